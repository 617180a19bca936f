"""A small typed client for the Kubernetes CRI (runtime.v1) on a runtime's gRPC socket.

The tests drive containerd's CRI plugin the way the kubelet does (pod sandbox first, then
containers in it), so pyrunc is checked on the path Kubernetes really takes, without a kubelet
or crictl on the machine. The messages are the ones in api.proto (a subset of cri-api v0.26,
which containerd 1.6 serves); callers may build or edit any of them directly, the helpers only
fill in what every test would otherwise repeat.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

import grpc

from . import api_pb2 as pb


class _Stub:
    """Every unary method of a service in api.proto, as callables, made from its descriptor
    (what grpcio-tools' *_pb2_grpc.py would spell out method by method)."""

    def __init__(self, channel: grpc.Channel, service: str) -> None:
        desc = pb.DESCRIPTOR.services_by_name[service]
        for m in desc.methods:
            req = getattr(pb, m.input_type.name)
            resp = getattr(pb, m.output_type.name)
            setattr(self, m.name, channel.unary_unary(
                f"/{desc.full_name}/{m.name}", request_serializer=req.SerializeToString,
                response_deserializer=resp.FromString))

# ExecSync output may be up to 16 MiB per stream (the runtime's cap); gRPC's default 4 MiB
# receive limit would turn a large but legal answer into RESOURCE_EXHAUSTED.
_MAX_MESSAGE = 64 << 20

# Extra deadline, past a call's own timeout, for the runtime to act on that timeout and answer.
_MARGIN = 10.0


class CRI:
    """One channel to a CRI runtime, with a deadline on every call.

    A deadline on each call means a wedged runtime (or shim) fails the test that hit it
    instead of hanging the whole session.
    """

    def __init__(self, socket_path: str, timeout: float = 30) -> None:
        # a relative path after "unix://" would be read as an authority, not a file
        self.socket_path = os.path.abspath(socket_path)
        self.timeout = timeout
        self.channel = grpc.insecure_channel(
            "unix://" + self.socket_path,
            options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE),
                ("grpc.max_send_message_length", _MAX_MESSAGE),
            ],
        )
        self.rt = _Stub(self.channel, "RuntimeService")
        self.img = _Stub(self.channel, "ImageService")

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> CRI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _deadline(self, call_timeout: float = 0) -> float:
        """A call that carries its own timeout must outlive it, or the runtime's answer is lost."""
        return max(self.timeout, call_timeout + _MARGIN) if call_timeout > 0 else self.timeout

    def wait_ready(self, timeout: float | None = None) -> None:
        """The socket appears before the CRI plugin serves; wait for the channel to connect."""
        grpc.channel_ready_future(self.channel).result(
            timeout=self.timeout if timeout is None else timeout
        )

    # -- runtime --

    def version(self) -> pb.VersionResponse:
        # "v1" is what the kubelet sends; containerd answers with the API it serves
        return self.rt.Version(pb.VersionRequest(version="v1"), timeout=self.timeout)

    def status(self, verbose: bool = False) -> pb.StatusResponse:
        return self.rt.Status(pb.StatusRequest(verbose=verbose), timeout=self.timeout)

    # -- pod sandboxes --

    def run_pod_sandbox(
        self, config: pb.PodSandboxConfig, runtime_handler: str = ""
    ) -> pb.RunPodSandboxResponse:
        """runtime_handler picks containerd's runtime (e.g. one whose runtime is pyrunc)."""
        req = pb.RunPodSandboxRequest(config=config, runtime_handler=runtime_handler)
        return self.rt.RunPodSandbox(req, timeout=self.timeout)

    def stop_pod_sandbox(self, pod_sandbox_id: str) -> pb.StopPodSandboxResponse:
        req = pb.StopPodSandboxRequest(pod_sandbox_id=pod_sandbox_id)
        return self.rt.StopPodSandbox(req, timeout=self.timeout)

    def remove_pod_sandbox(self, pod_sandbox_id: str) -> pb.RemovePodSandboxResponse:
        req = pb.RemovePodSandboxRequest(pod_sandbox_id=pod_sandbox_id)
        return self.rt.RemovePodSandbox(req, timeout=self.timeout)

    def pod_sandbox_status(
        self, pod_sandbox_id: str, verbose: bool = False
    ) -> pb.PodSandboxStatusResponse:
        """verbose adds containerd's info map (JSON: pid, runtime spec, ...) to the answer."""
        req = pb.PodSandboxStatusRequest(pod_sandbox_id=pod_sandbox_id, verbose=verbose)
        return self.rt.PodSandboxStatus(req, timeout=self.timeout)

    def list_pod_sandbox(
        self, filter: pb.PodSandboxFilter | None = None
    ) -> pb.ListPodSandboxResponse:
        return self.rt.ListPodSandbox(pb.ListPodSandboxRequest(filter=filter), timeout=self.timeout)

    # -- containers --

    def create_container(
        self,
        pod_sandbox_id: str,
        config: pb.ContainerConfig,
        sandbox_config: pb.PodSandboxConfig,
    ) -> pb.CreateContainerResponse:
        """The sandbox's config goes again: containerd takes the log directory from it."""
        req = pb.CreateContainerRequest(
            pod_sandbox_id=pod_sandbox_id, config=config, sandbox_config=sandbox_config
        )
        return self.rt.CreateContainer(req, timeout=self.timeout)

    def start_container(self, container_id: str) -> pb.StartContainerResponse:
        req = pb.StartContainerRequest(container_id=container_id)
        return self.rt.StartContainer(req, timeout=self.timeout)

    def stop_container(self, container_id: str, timeout: int = 0) -> pb.StopContainerResponse:
        """timeout is the grace period in seconds before SIGKILL (0: kill at once)."""
        req = pb.StopContainerRequest(container_id=container_id, timeout=timeout)
        return self.rt.StopContainer(req, timeout=self._deadline(timeout))

    def remove_container(self, container_id: str) -> pb.RemoveContainerResponse:
        req = pb.RemoveContainerRequest(container_id=container_id)
        return self.rt.RemoveContainer(req, timeout=self.timeout)

    def list_containers(
        self, filter: pb.ContainerFilter | None = None
    ) -> pb.ListContainersResponse:
        return self.rt.ListContainers(pb.ListContainersRequest(filter=filter), timeout=self.timeout)

    def container_status(
        self, container_id: str, verbose: bool = False
    ) -> pb.ContainerStatusResponse:
        """verbose adds containerd's info map (JSON: pid, runtime spec, ...) to the answer."""
        req = pb.ContainerStatusRequest(container_id=container_id, verbose=verbose)
        return self.rt.ContainerStatus(req, timeout=self.timeout)

    def update_container_resources(
        self,
        container_id: str,
        linux: pb.LinuxContainerResources,
        annotations: Mapping[str, str] | None = None,
    ) -> pb.UpdateContainerResourcesResponse:
        """containerd turns this into the runtime's `update` on the running container."""
        req = pb.UpdateContainerResourcesRequest(
            container_id=container_id, linux=linux, annotations=dict(annotations or {})
        )
        return self.rt.UpdateContainerResources(req, timeout=self.timeout)

    def reopen_container_log(self, container_id: str) -> pb.ReopenContainerLogResponse:
        req = pb.ReopenContainerLogRequest(container_id=container_id)
        return self.rt.ReopenContainerLog(req, timeout=self.timeout)

    def exec_sync(
        self, container_id: str, cmd: Sequence[str], timeout: int = 0
    ) -> pb.ExecSyncResponse:
        """timeout (seconds, 0: none) is the runtime's; the RPC deadline is set past it."""
        req = pb.ExecSyncRequest(container_id=container_id, cmd=list(cmd), timeout=timeout)
        return self.rt.ExecSync(req, timeout=self._deadline(timeout))

    def exec(
        self,
        container_id: str,
        cmd: Sequence[str],
        tty: bool = False,
        stdin: bool = False,
        stdout: bool = True,
        stderr: bool = True,
    ) -> pb.ExecResponse:
        """Only prepares the exec: the answer is a URL on containerd's streaming server."""
        req = pb.ExecRequest(
            container_id=container_id,
            cmd=list(cmd),
            tty=tty,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr and not tty,  # the API forbids stderr with a TTY
        )
        return self.rt.Exec(req, timeout=self.timeout)

    def container_stats(self, container_id: str) -> pb.ContainerStatsResponse:
        req = pb.ContainerStatsRequest(container_id=container_id)
        return self.rt.ContainerStats(req, timeout=self.timeout)

    def list_container_stats(
        self, filter: pb.ContainerStatsFilter | None = None
    ) -> pb.ListContainerStatsResponse:
        return self.rt.ListContainerStats(
            pb.ListContainerStatsRequest(filter=filter), timeout=self.timeout
        )

    # -- images --

    def list_images(self, image: str = "") -> pb.ListImagesResponse:
        flt = pb.ImageFilter(image=pb.ImageSpec(image=image)) if image else None
        return self.img.ListImages(pb.ListImagesRequest(filter=flt), timeout=self.timeout)

    def image_status(self, image: str, verbose: bool = False) -> pb.ImageStatusResponse:
        """An unknown image is not an error: the answer's `image` is then unset."""
        req = pb.ImageStatusRequest(image=pb.ImageSpec(image=image), verbose=verbose)
        return self.img.ImageStatus(req, timeout=self.timeout)

    def pull_image(
        self, image: str, sandbox_config: pb.PodSandboxConfig | None = None
    ) -> pb.PullImageResponse:
        req = pb.PullImageRequest(image=pb.ImageSpec(image=image), sandbox_config=sandbox_config)
        return self.img.PullImage(req, timeout=self.timeout)

    def remove_image(self, image: str) -> pb.RemoveImageResponse:
        req = pb.RemoveImageRequest(image=pb.ImageSpec(image=image))
        return self.img.RemoveImage(req, timeout=self.timeout)


def pod_config(
    name: str,
    uid: str,
    namespace: str,
    log_directory: str,
    hostname: str | None = None,
    cgroup_parent: str = "",
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> pb.PodSandboxConfig:
    """A sandbox config as the kubelet sends it for a plain pod.

    The same message must go to run_pod_sandbox and to every create_container in that pod.
    hostname defaults to the pod name (the kubelet's default). cgroup_parent "" leaves the
    choice to containerd; the linux section is always present, as the kubelet always sends it.
    """
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=uid, namespace=namespace, attempt=0),
        hostname=name if hostname is None else hostname,
        log_directory=log_directory,
        labels=dict(labels or {}),
        annotations=dict(annotations or {}),
        linux=pb.LinuxPodSandboxConfig(cgroup_parent=cgroup_parent),
    )


def container_config(
    name: str,
    image: str,
    command: Sequence[str],
    args: Sequence[str] = (),
    log_path: str | None = None,
    memory_limit: int | None = None,
    cpu_quota: int | None = None,
    cpu_period: int | None = None,
    envs: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    mounts: Iterable[pb.Mount] = (),
) -> pb.ContainerConfig:
    """A container config as the kubelet sends it, with only the limits a test asks for.

    log_path is relative to the pod's log_directory; it defaults to "<name>.log" because an
    empty one makes containerd drop the container's output, which tests usually want to read.
    A limit left at None stays unset (0), which the runtime reads as "no limit".
    """
    resources = pb.LinuxContainerResources()
    if memory_limit is not None:
        resources.memory_limit_in_bytes = memory_limit
    if cpu_quota is not None:
        resources.cpu_quota = cpu_quota
    if cpu_period is not None:
        resources.cpu_period = cpu_period
    return pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=name, attempt=0),
        image=pb.ImageSpec(image=image),
        command=list(command),
        args=list(args),
        envs=[pb.KeyValue(key=k, value=v) for k, v in (envs or {}).items()],
        mounts=list(mounts),
        labels=dict(labels or {}),
        log_path=f"{name}.log" if log_path is None else log_path,
        linux=pb.LinuxContainerConfig(resources=resources),
    )
