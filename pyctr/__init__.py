"""pyctr: images, snapshots and containers from an image reference, over the pyrunc library.

The third front door (docs/architecture.md): containerd's concepts (namespaces, content,
images, snapshots, containers) in small modules of our own; `ctr` and `nerdctl` are the
interfaces users know. It sits above pyrunc's library and calls it as the CLI does.
"""
