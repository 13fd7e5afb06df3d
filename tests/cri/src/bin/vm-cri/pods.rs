//! Pod and container configs as the kubelet (1.3x, cgroupfs driver) sends
//! them for a pod of `runtimeClassName: speaker` with `hostNetwork: true`:
//! metadata, labels and annotations the kubelet adds, log directory and
//! path, cgroup parent, namespace options, the default masked and
//! read-only paths, the termination-log mount.

use std::collections::HashMap;
use std::fs;

use k8s_cri::v1::security_profile::ProfileType;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, ImageSpec, KeyValue, LinuxContainerConfig, LinuxContainerResources, LinuxContainerSecurityContext,
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, Mount, NamespaceMode, NamespaceOption, PodSandboxConfig, PodSandboxMetadata,
    SecurityProfile,
};

/// The RuntimeClass handler (containerd's `runtimes.speaker` table).
pub const HANDLER: &str = "speaker";

pub const NAMESPACE: &str = "default";

/// The kubelet's default masked paths (`securitycontext.defaultMaskedPaths`).
const MASKED: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// The kubelet's default read-only paths.
const READONLY: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// A pod: name, uid, its annotations and seccomp profile type.
pub struct Pod {
    pub name: String,
    pub uid: String,
    pub annotations: Vec<(String, String)>,
    pub seccomp: ProfileType,
}

impl Pod {
    pub fn new(name: &str, annotations: &[(&str, &str)], seccomp: ProfileType) -> Pod {
        // A fixed uid per name (the API server's would be random).
        let mut hex = String::new();
        for b in name.bytes().chain(std::iter::repeat(b'0')).take(16) {
            hex.push_str(&format!("{b:02x}"));
        }
        let uid = format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]);
        Pod { name: name.into(), uid, annotations: annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), seccomp }
    }

    /// /var/log/pods/NAMESPACE_NAME_UID (the kubelet's).
    pub fn log_directory(&self) -> String {
        format!("/var/log/pods/{NAMESPACE}_{}_{}", self.name, self.uid)
    }

    /// /var/lib/kubelet/pods/UID (volumes, termination logs).
    pub fn pod_dir(&self) -> String {
        format!("/var/lib/kubelet/pods/{}", self.uid)
    }

    fn labels(&self) -> HashMap<String, String> {
        HashMap::from([
            ("io.kubernetes.pod.name".to_string(), self.name.clone()),
            ("io.kubernetes.pod.namespace".to_string(), NAMESPACE.to_string()),
            ("io.kubernetes.pod.uid".to_string(), self.uid.clone()),
            ("app".to_string(), self.name.clone()),
        ])
    }

    fn namespaces() -> NamespaceOption {
        NamespaceOption {
            network: NamespaceMode::Node as i32,
            pid: NamespaceMode::Container as i32,
            ipc: NamespaceMode::Pod as i32,
            ..Default::default()
        }
    }

    fn profile(&self) -> SecurityProfile {
        SecurityProfile { profile_type: self.seccomp as i32, localhost_ref: String::new() }
    }

    /// The sandbox config of RunPodSandbox (and of every CreateContainer);
    /// its log directory made, as the kubelet makes it first.
    pub fn sandbox_config(&self) -> PodSandboxConfig {
        let _ = fs::create_dir_all(self.log_directory());
        let mut annotations: HashMap<String, String> = self.annotations.iter().cloned().collect();
        annotations.insert("kubernetes.io/config.source".into(), "api".into());
        annotations.insert("kubernetes.io/config.seen".into(), "2026-12-06T20:00:00.000000000Z".into());
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata { name: self.name.clone(), uid: self.uid.clone(), namespace: NAMESPACE.into(), attempt: 0 }),
            // (The kubelet sets no hostname for a host-network pod: it has
            // the node's, in the node's UTS namespace.)
            log_directory: self.log_directory(),
            labels: self.labels(),
            annotations,
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: format!("/kubepods/besteffort/pod{}", self.uid),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(Self::namespaces()),
                    seccomp: Some(self.profile()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The config of container `name` running image `image` (its id, as
    /// the kubelet passes it after the pull; `user_image`: the name in the
    /// pod spec) with `command` (empty: the image's entrypoint) and
    /// `mounts` (host path, container path); the container's log directory
    /// and termination-log file made, as the kubelet makes them.
    pub fn container_config(
        &self,
        name: &str,
        image: &str,
        user_image: &str,
        command: &[&str],
        mounts: &[(&str, &str)],
    ) -> ContainerConfig {
        let _ = fs::create_dir_all(format!("{}/{name}", self.log_directory()));
        let termination = format!("{}/containers/{name}/0000", self.pod_dir());
        if let Some(dir) = std::path::Path::new(&termination).parent() {
            let _ = fs::create_dir_all(dir);
        }
        let _ = fs::write(&termination, "");
        let mut all_mounts: Vec<Mount> =
            mounts.iter().map(|(h, c)| Mount { host_path: h.to_string(), container_path: c.to_string(), ..Default::default() }).collect();
        all_mounts.push(Mount { host_path: termination, container_path: "/dev/termination-log".into(), ..Default::default() });
        let mut labels = self.labels();
        labels.remove("app");
        labels.insert("io.kubernetes.container.name".into(), name.into());
        let annotations = HashMap::from([
            ("io.kubernetes.container.hash".to_string(), "5c1b2d4e".to_string()),
            ("io.kubernetes.container.restartCount".to_string(), "0".to_string()),
            ("io.kubernetes.container.terminationMessagePath".to_string(), "/dev/termination-log".to_string()),
            ("io.kubernetes.container.terminationMessagePolicy".to_string(), "File".to_string()),
            ("io.kubernetes.pod.terminationGracePeriod".to_string(), "30".to_string()),
        ]);
        ContainerConfig {
            metadata: Some(ContainerMetadata { name: name.into(), attempt: 0 }),
            image: Some(ImageSpec { image: image.into(), user_specified_image: user_image.into(), ..Default::default() }),
            command: command.iter().map(|s| s.to_string()).collect(),
            envs: vec![
                KeyValue { key: "KUBERNETES_SERVICE_HOST".into(), value: "10.96.0.1".into() },
                KeyValue { key: "KUBERNETES_SERVICE_PORT".into(), value: "443".into() },
            ],
            mounts: all_mounts,
            labels,
            annotations,
            log_path: format!("{name}/0.log"),
            linux: Some(LinuxContainerConfig {
                resources: Some(LinuxContainerResources { cpu_period: 100000, cpu_shares: 2, oom_score_adj: 1000, ..Default::default() }),
                security_context: Some(LinuxContainerSecurityContext {
                    namespace_options: Some(Self::namespaces()),
                    seccomp: Some(self.profile()),
                    masked_paths: MASKED.iter().map(|s| s.to_string()).collect(),
                    readonly_paths: READONLY.iter().map(|s| s.to_string()).collect(),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }
    }
}
