"""A pipeline brought up on this machine: the emulator started, the pipeline deployed into it
and the local runtime serving it. It composes local/, deploy/ and ops/, so local/ (the runtime
layer) depends on none of them."""
