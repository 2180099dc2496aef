"""Per-object codes (trainer.region_codes): the enclosure rule's objects, the code map, the
seeded colours, and the U-Net that reads the map."""
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from trainer.data.transforms import to_tensor
from trainer.nets.unet import UnetGenerator
from trainer.region_codes import (components, region_map, region_means, region_palette, seeded_colours,
                                  sketch_regions)


def drawing(shapes, size=128, width=3):
    """A white sketch with the outline of each (x0, y0, x1, y1) ellipse, as a (1, 3, H, W) tensor."""
    im = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(im)
    for box in shapes:
        d.ellipse(box, outline=(20, 20, 25), width=width)
    return to_tensor(im)[None]


def test_components_are_four_connected_and_numbered_by_their_first_pixel():
    free = torch.tensor([[1, 1, 0, 0, 1],
                         [0, 1, 0, 1, 0],
                         [0, 0, 0, 0, 0],
                         [1, 0, 1, 1, 1]], dtype=torch.bool)[None]
    lab = components(free)[0]
    assert lab[0, 0] == lab[0, 1] == lab[1, 1] == 1  # one component, first pixel flat index 0
    assert lab[0, 4] != lab[1, 3]  # touching only diagonally: two components
    assert lab[3, 2] == lab[3, 3] == lab[3, 4] != lab[3, 0]
    assert (lab[~free[0]] == 0).all()
    assert len(torch.unique(lab[free[0]])) == 5


def test_sketch_regions_finds_each_closed_outline_and_leaves_the_background():
    x = drawing([(10, 30, 50, 70), (70, 40, 115, 90)])
    lab = sketch_regions(x)[0]
    assert int(lab.max()) == 2
    assert lab[50, 30] == 1 and lab[65, 92] == 2  # the centres, numbered in raster order
    assert lab[5, 5] == 0 and lab[120, 64] == 0  # the background touches the border
    assert lab[50, 10] == 1  # the outline itself belongs to its object (the region grows over it)
    # two outlines that overlap are one object under the enclosure rule; an open outline is none
    assert int(sketch_regions(drawing([(10, 30, 60, 80), (50, 30, 100, 80)]))[0].max()) == 1
    im = Image.new("RGB", (128, 128), "white")
    ImageDraw.Draw(im).arc((20, 20, 100, 100), 0, 300, fill=(0, 0, 0), width=3)
    assert int(sketch_regions(to_tensor(im)[None]).max()) == 0
    with pytest.raises(ValueError, match="N, C, H, W"):
        sketch_regions(x[0])


def test_region_map_paints_each_code_and_region_means_reads_it_back():
    labels = torch.zeros(2, 16, 16, dtype=torch.long)
    labels[0, 2:6, 2:6], labels[0, 8:14, 9:15], labels[1, 0:3, 0:3] = 1, 2, 1
    colours = torch.tensor([[[0.5, -0.2, 0.1], [-0.9, 0.3, 0.7]], [[0.2, 0.2, -1.0], [0.0, 0.0, 0.0]]])
    m = region_map(labels, colours)
    assert m.shape == (2, 4, 16, 16)
    assert torch.equal(m[:, 3], (labels > 0).float()) and (m[:, :3][(labels == 0)[:, None].expand(-1, 3, -1, -1)] == 0).all()
    means, counts = region_means(m[:, :3], labels, 2)
    assert torch.allclose(means[0], colours[0]) and torch.allclose(means[1, 0], colours[1, 0])
    assert counts.tolist() == [[16, 36], [9, 0]] and torch.equal(means[1, 1], torch.zeros(3))
    codes = torch.cat([colours, torch.rand(2, 2, 2)], -1)  # with 2 learned features: after the indicator
    wide = region_map(labels, codes)
    assert wide.shape == (2, 6, 16, 16) and torch.equal(wide[:, :4], m)
    assert torch.allclose(region_means(wide[:, 4:], labels, 2)[0][0], codes[0, :, 3:])


def test_region_palette_finds_an_objects_two_colours_largest_first():
    image = torch.full((1, 3, 16, 16), -1.0)
    labels = torch.zeros(1, 16, 16, dtype=torch.long)
    labels[0, 2:10, 2:10], labels[0, 12:15, 12:15] = 1, 2
    image[0, :, 2:8, 2:10] = torch.tensor([0.5, -0.5, 0.0]).view(3, 1, 1)  # a wall, 48 px
    image[0, :, 8:10, 2:10] = torch.tensor([-0.2, 0.9, 0.3]).view(3, 1, 1)  # its roof, 16 px
    image[0, :, 12:15, 12:15] = 0.25  # one flat colour: both entries are it
    image.requires_grad_(True)
    codes, counts = region_palette(image, labels, 2, 2)
    expected = torch.tensor([[[0.5, -0.5, 0.0, -0.2, 0.9, 0.3], [0.25] * 6]])
    assert codes.shape == (1, 2, 6) and torch.allclose(codes, expected) and counts.tolist() == [[64, 9]]
    codes.sum().backward()
    assert image.grad.abs().sum() > 0  # the colours pass gradient back to the image
    assert torch.allclose(region_palette(image, labels, 2, 1)[0], region_means(image, labels, 2)[0])
    with pytest.raises(ValueError, match="1 or 2"):
        region_palette(image, labels, 2, 3)


def test_seeded_colours_are_the_seeds_and_stay_when_an_object_is_added():
    bank = torch.linspace(-1, 1, 300).view(100, 3)
    two = sketch_regions(drawing([(10, 10, 45, 45), (80, 80, 120, 120)]))
    three = sketch_regions(drawing([(10, 10, 45, 45), (80, 80, 120, 120), (80, 5, 120, 40)]))
    a = seeded_colours(two, bank, 7)
    assert torch.equal(a, seeded_colours(two, bank, 7)) and a.shape == (1, 2, 3)
    assert not torch.equal(a, seeded_colours(two, bank, 8))
    b = seeded_colours(three, bank, 7)  # the new object (top right) starts highest: first in raster order
    assert torch.equal(b[0, 1], a[0, 0]) and torch.equal(b[0, 2], a[0, 1])
    assert all(any(torch.equal(c, row) for row in bank) for c in b[0])  # every code is a bank colour
    assert seeded_colours(torch.zeros(1, 8, 8, dtype=torch.long), bank, 1).shape == (1, 0, 3)
    wide = torch.linspace(-1, 1, 500).view(100, 5)  # codes with learned features: whole rows
    w = seeded_colours(two, wide, 7)
    assert w.shape == (1, 2, 5) and all(any(torch.equal(c, row) for row in wide) for c in w[0])


def test_a_generator_saved_without_a_code_map_loads_as_the_same_function():
    torch.manual_seed(0)
    old = UnetGenerator(3, 3, 5, 8, nz=4).eval()
    new = UnetGenerator(3, 3, 5, 8, nz=4, region_nc=4).eval()
    new.load_state_dict(new.adapt_state(old.state_dict()))
    x, z = torch.rand(2, 3, 32, 32) * 2 - 1, torch.randn(2, 4)
    regions = torch.rand(2, 4, 32, 32)
    with torch.no_grad():
        assert torch.allclose(new(x, z, regions), old(x, z), atol=1e-6)
        assert torch.allclose(new(x, z), old(x, z), atol=1e-6)
    assert new.model.model[0].weight.shape[1] == 3 + 4 + 4
    assert new.adapt_state({"model.model.0.weight": torch.zeros(1, 1, 4, 4)})["model.model.0.weight"].shape == (1, 1, 4, 4)
