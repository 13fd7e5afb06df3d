//! A blocking client of a CRI runtime service (containerd's
//! `io.containerd.grpc.v1.cri` plugin) over its Unix socket: the calls the
//! kubelet makes, one at a time, each with a deadline.  An error is the
//! gRPC status as the kubelet gets it: `RPC: CODE: MESSAGE`.

use std::future::Future;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerStatusRequest, ContainerStatusResponse, CreateContainerRequest, ExecSyncRequest, ExecSyncResponse, ImageSpec,
    ImageStatusRequest, ListContainersRequest, ListPodSandboxRequest, PodSandboxConfig, PodSandboxStatusRequest, PodSandboxStatusResponse,
    RemoveContainerRequest, RemovePodSandboxRequest, RunPodSandboxRequest, StartContainerRequest, StopContainerRequest,
    StopPodSandboxRequest, VersionRequest, VersionResponse,
};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// containerd's socket (its CRI plugin serves on it).
pub const CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";

/// How long one call may take (TCG guests are slow; the kubelet's own
/// default runtime request timeout is 2 minutes).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Cri {
    rt: tokio::runtime::Runtime,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

/// `RPC: CODE: MESSAGE` of a failed call.
fn status(rpc: &str, s: tonic::Status) -> String {
    format!("{rpc}: {:?}: {}", s.code(), s.message())
}

impl Cri {
    /// Connects to the CRI service on the Unix socket `socket`.
    pub fn connect(socket: &str) -> Result<Cri, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the CRI client's runtime: {e}"))?;
        let path = socket.to_string();
        // (The URI is required by tonic and never resolved: the connector
        // dials the socket.)
        let endpoint = Endpoint::try_from("http://[::1]:10250").map_err(|e| e.to_string())?.connect_timeout(Duration::from_secs(30));
        let channel = rt
            .block_on(endpoint.connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
            })))
            .map_err(|e| format!("cannot connect to the CRI service on {socket}: {e}"))?;
        Ok(Cri { rt, runtime: RuntimeServiceClient::new(channel.clone()), images: ImageServiceClient::new(channel) })
    }

    fn call<T, F>(&self, rpc: &str, f: F) -> Result<T, String>
    where
        F: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        // (The timer is made inside the runtime: it needs its reactor.)
        match self.rt.block_on(async { tokio::time::timeout(CALL_TIMEOUT, f).await }) {
            Ok(r) => r.map(tonic::Response::into_inner).map_err(|s| status(rpc, s)),
            Err(_) => Err(format!("{rpc}: no answer in {} s", CALL_TIMEOUT.as_secs())),
        }
    }

    pub fn version(&self) -> Result<VersionResponse, String> {
        let mut c = self.runtime.clone();
        self.call("Version", c.version(VersionRequest { version: "v1".into() }))
    }

    /// The image's id (`sha256:...`) if the node has image `name`.
    pub fn image_id(&self, name: &str) -> Result<Option<String>, String> {
        let mut c = self.images.clone();
        let image = Some(ImageSpec { image: name.into(), ..Default::default() });
        let r = self.call("ImageStatus", c.image_status(ImageStatusRequest { image, verbose: false }))?;
        Ok(r.image.map(|i| i.id))
    }

    pub fn run_pod_sandbox(&self, config: &PodSandboxConfig, handler: &str) -> Result<String, String> {
        let mut c = self.runtime.clone();
        let req = RunPodSandboxRequest { config: Some(config.clone()), runtime_handler: handler.into() };
        Ok(self.call("RunPodSandbox", c.run_pod_sandbox(req))?.pod_sandbox_id)
    }

    pub fn pod_sandbox_status(&self, id: &str) -> Result<PodSandboxStatusResponse, String> {
        let mut c = self.runtime.clone();
        self.call("PodSandboxStatus", c.pod_sandbox_status(PodSandboxStatusRequest { pod_sandbox_id: id.into(), verbose: true }))
    }

    pub fn stop_pod_sandbox(&self, id: &str) -> Result<(), String> {
        let mut c = self.runtime.clone();
        self.call("StopPodSandbox", c.stop_pod_sandbox(StopPodSandboxRequest { pod_sandbox_id: id.into() })).map(drop)
    }

    pub fn remove_pod_sandbox(&self, id: &str) -> Result<(), String> {
        let mut c = self.runtime.clone();
        self.call("RemovePodSandbox", c.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: id.into() })).map(drop)
    }

    /// The ids of the node's pod sandboxes.
    pub fn list_pod_sandboxes(&self) -> Result<Vec<String>, String> {
        let mut c = self.runtime.clone();
        Ok(self
            .call("ListPodSandbox", c.list_pod_sandbox(ListPodSandboxRequest { filter: None }))?
            .items
            .into_iter()
            .map(|s| s.id)
            .collect())
    }

    pub fn create_container(&self, sandbox_id: &str, config: &ContainerConfig, sandbox: &PodSandboxConfig) -> Result<String, String> {
        let mut c = self.runtime.clone();
        let req = CreateContainerRequest {
            pod_sandbox_id: sandbox_id.into(),
            config: Some(config.clone()),
            sandbox_config: Some(sandbox.clone()),
        };
        Ok(self.call("CreateContainer", c.create_container(req))?.container_id)
    }

    pub fn start_container(&self, id: &str) -> Result<(), String> {
        let mut c = self.runtime.clone();
        self.call("StartContainer", c.start_container(StartContainerRequest { container_id: id.into() })).map(drop)
    }

    /// Stops container `id`: SIGTERM (or the image's stop signal), SIGKILL
    /// after `grace_secs`.
    pub fn stop_container(&self, id: &str, grace_secs: i64) -> Result<(), String> {
        let mut c = self.runtime.clone();
        self.call("StopContainer", c.stop_container(StopContainerRequest { container_id: id.into(), timeout: grace_secs })).map(drop)
    }

    pub fn remove_container(&self, id: &str) -> Result<(), String> {
        let mut c = self.runtime.clone();
        self.call("RemoveContainer", c.remove_container(RemoveContainerRequest { container_id: id.into() })).map(drop)
    }

    /// The ids of the node's containers (every state).
    pub fn list_containers(&self) -> Result<Vec<String>, String> {
        let mut c = self.runtime.clone();
        Ok(self
            .call("ListContainers", c.list_containers(ListContainersRequest { filter: None }))?
            .containers
            .into_iter()
            .map(|c| c.id)
            .collect())
    }

    pub fn container_status(&self, id: &str) -> Result<ContainerStatusResponse, String> {
        let mut c = self.runtime.clone();
        self.call("ContainerStatus", c.container_status(ContainerStatusRequest { container_id: id.into(), verbose: true }))
    }

    /// Runs `cmd` in container `id` and waits for it, at most
    /// `timeout_secs` (the kubelet's exec probes: `timeoutSeconds`).
    pub fn exec_sync(&self, id: &str, cmd: &[&str], timeout_secs: i64) -> Result<ExecSyncResponse, String> {
        let mut c = self.runtime.clone();
        let req = ExecSyncRequest { container_id: id.into(), cmd: cmd.iter().map(|s| s.to_string()).collect(), timeout: timeout_secs };
        self.call("ExecSync", c.exec_sync(req))
    }
}

/// The pid of a container or sandbox, from the `info` JSON of a verbose
/// ContainerStatus or PodSandboxStatus (containerd's `"pid"`).
pub fn pid_of(info: &std::collections::HashMap<String, String>) -> Option<i32> {
    let v: serde_json::Value = serde_json::from_str(info.get("info")?).ok()?;
    v.get("pid")?.as_i64().and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 0)
}
