"""The names of the numeric precisions, without importing torch (the CLI and the studio's
settings read them before a model loads): training's ``train.precision`` values and the
inference precisions a Translator runs in. What they resolve to on a device is
:mod:`trainer.device`'s."""

#: train.precision: auto (bf16 autocast where native, fp16 with a scaler on a GPU without bf16), off (fp32)
PRECISIONS = ("auto", "off", "bf16", "fp16")
#: a Translator's precision: auto (reduced where native and measured to hold), fp32, bf16, fp16 ("off" reads as fp32)
INFERENCE_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
