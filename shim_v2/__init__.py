"""containerd-shim-pyrunc-v2: a containerd shim v2 over TTRPC, with pyrunc's library in-process.

The TTRPC protocol itself lives in `shim_v2.ttrpc`, which depends on nothing of pyrunc's and
could be published on its own.
"""
