"""NumPy forward kernels (convolution, pooling, resampling) that match PyTorch value for value."""
