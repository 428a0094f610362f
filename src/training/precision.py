"""The mixed precisions the hand-written loop runs, by the dtype its autocast computes in; weights stay float32."""

import torch

AUTOCAST_DTYPES = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16}
