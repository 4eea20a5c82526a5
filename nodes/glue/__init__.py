"""Where nodes meet ComfyUI itself: its folders and progress bar, IMAGE tensors, model patching, its UNet for
training. Node files stay thin by calling these and the `selma` core."""
