"""Two ways to run the same experiment: Lightning's Trainer, and a plain-PyTorch loop written out by hand."""
