//! The manifests of `deploy/`: parsed (every document of every file), and
//! the DaemonSet's node install script (its init container `load`), which
//! the guest runs as a privileged pod (vm-cri).

use std::path::Path;

use serde::Deserialize;
use serde_yaml::Value;

/// Every YAML document of `path`.
pub fn documents(path: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut docs = Vec::new();
    for d in serde_yaml::Deserializer::from_str(&text) {
        let v = Value::deserialize(d).map_err(|e| format!("{}: not valid YAML: {e}", path.display()))?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

/// The document of `kind` in `docs`.
pub fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Result<&'a Value, String> {
    docs.iter().find(|d| d["kind"].as_str() == Some(kind)).ok_or_else(|| format!("no {kind}"))
}

/// The DaemonSet's init container `name`: its command and volume mounts
/// (name, mountPath).
pub struct InitContainer {
    pub command: Vec<String>,
    pub mounts: Vec<(String, String)>,
}

pub fn init_container(daemonset: &Value, name: &str) -> Result<InitContainer, String> {
    let spec = &daemonset["spec"]["template"]["spec"];
    let c = spec["initContainers"]
        .as_sequence()
        .and_then(|s| s.iter().find(|c| c["name"].as_str() == Some(name)))
        .ok_or_else(|| format!("the DaemonSet has no init container {name}"))?;
    let strings = |v: &Value| -> Vec<String> {
        v.as_sequence().map(|s| s.iter().filter_map(|x| x.as_str().map(String::from)).collect()).unwrap_or_default()
    };
    let mut command = strings(&c["command"]);
    command.extend(strings(&c["args"]));
    let mounts = c["volumeMounts"]
        .as_sequence()
        .map(|s| s.iter().filter_map(|m| Some((m["name"].as_str()?.to_string(), m["mountPath"].as_str()?.to_string()))).collect())
        .unwrap_or_default();
    Ok(InitContainer { command, mounts })
}

/// The hostPath of the DaemonSet's volume `name`.
pub fn host_path(daemonset: &Value, name: &str) -> Option<String> {
    daemonset["spec"]["template"]["spec"]["volumes"].as_sequence()?.iter().find(|v| v["name"].as_str() == Some(name))?["hostPath"]["path"]
        .as_str()
        .map(String::from)
}

#[cfg(test)]
mod tests {
    //! deploy/ as the API server would take it: every file parses, each
    //! object has what its kind requires, and the pieces name each other
    //! consistently (handler, labels, volumes, profiles, annotations).
    use super::*;
    use std::path::PathBuf;

    fn deploy() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
    }

    fn all() -> Vec<(String, Value)> {
        let mut out = Vec::new();
        let mut files: Vec<PathBuf> = std::fs::read_dir(deploy()).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in files {
            assert_eq!(f.extension().and_then(|e| e.to_str()), Some("yaml"), "deploy/ holds only manifests: {}", f.display());
            for d in documents(&f).unwrap() {
                out.push((f.file_name().unwrap().to_string_lossy().into_owned(), d));
            }
        }
        out
    }

    fn get<'a>(docs: &'a [(String, Value)], kind: &str) -> &'a Value {
        &docs.iter().find(|(_, d)| d["kind"].as_str() == Some(kind)).unwrap_or_else(|| panic!("deploy/ has no {kind}")).1
    }

    #[test]
    fn every_manifest_parses_with_api_version_kind_and_name() {
        let docs = all();
        let kinds: Vec<&str> = docs.iter().filter_map(|(_, d)| d["kind"].as_str()).collect();
        for k in ["RuntimeClass", "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "DaemonSet", "Deployment"] {
            assert!(kinds.contains(&k), "deploy/ has no {k}: {kinds:?}");
        }
        for (f, d) in &docs {
            let want = match d["kind"].as_str().unwrap_or_default() {
                "RuntimeClass" => "node.k8s.io/v1",
                "DaemonSet" | "Deployment" => "apps/v1",
                "ClusterRole" | "ClusterRoleBinding" => "rbac.authorization.k8s.io/v1",
                "Namespace" | "ServiceAccount" => "v1",
                other => panic!("{f}: unexpected kind {other:?}"),
            };
            assert_eq!(d["apiVersion"].as_str(), Some(want), "{f}: {}", d["kind"].as_str().unwrap_or_default());
            assert!(d["metadata"]["name"].as_str().is_some_and(|n| !n.is_empty()), "{f}: an object without a name");
        }
    }

    #[test]
    fn runtimeclass_names_the_containerd_handler_and_the_daemonsets_label() {
        let docs = all();
        let rc = get(&docs, "RuntimeClass");
        assert_eq!(rc["handler"].as_str(), Some("speaker"));
        // The handler is the runtime table of the guest's (and the doc's) containerd config.
        let guest = std::fs::read_to_string(deploy().join("../scripts/build-guest-rootfs-debian")).unwrap();
        assert!(guest.contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.speaker]"));
        let label = rc["scheduling"]["nodeSelector"]["speaker.io/module"].as_str();
        assert_eq!(label, Some("loaded"));
        let ds = get(&docs, "DaemonSet");
        let script: String = ds["spec"]["template"]["spec"]["containers"][0]["args"][0].as_str().unwrap().to_string();
        assert!(script.contains("speaker.io/module=loaded"), "the DaemonSet does not set the RuntimeClass' label: {script}");
    }

    #[test]
    fn daemonset_selects_its_pods_mounts_declared_volumes_and_may_label_nodes() {
        let docs = all();
        let ds = get(&docs, "DaemonSet");
        let ns = ds["metadata"]["namespace"].as_str().unwrap();
        assert_eq!(get(&docs, "Namespace")["metadata"]["name"].as_str(), Some(ns));
        let spec = &ds["spec"]["template"];
        for (k, v) in ds["spec"]["selector"]["matchLabels"].as_mapping().unwrap() {
            assert_eq!(&spec["metadata"]["labels"][k.as_str().unwrap()], v, "the selector does not match the pod template");
        }
        let volumes: Vec<&str> = spec["spec"]["volumes"].as_sequence().unwrap().iter().filter_map(|v| v["name"].as_str()).collect();
        let containers =
            spec["spec"]["containers"].as_sequence().unwrap().iter().chain(spec["spec"]["initContainers"].as_sequence().unwrap());
        for c in containers {
            assert!(c["image"].as_str().is_some(), "container {:?} has no image", c["name"]);
            for m in c["volumeMounts"].as_sequence().unwrap() {
                assert!(volumes.contains(&m["name"].as_str().unwrap()), "mount of an undeclared volume: {m:?}");
            }
        }
        assert_eq!(host_path(ds, "opt").as_deref(), Some("/opt/speaker/bin"));
        assert_eq!(host_path(ds, "etc").as_deref(), Some("/etc/speaker/profiles"));
        let sa = spec["spec"]["serviceAccountName"].as_str().unwrap();
        let account = get(&docs, "ServiceAccount");
        assert_eq!((account["metadata"]["name"].as_str(), account["metadata"]["namespace"].as_str()), (Some(sa), Some(ns)));
        let binding = get(&docs, "ClusterRoleBinding");
        assert_eq!(binding["subjects"][0]["name"].as_str(), Some(sa));
        let role = get(&docs, "ClusterRole");
        assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
        let rule = &role["rules"][0];
        assert!(rule["resources"].as_sequence().unwrap().iter().any(|r| r == "nodes"));
        assert!(rule["verbs"].as_sequence().unwrap().iter().any(|v| v == "patch"), "the node label needs patch on nodes");
        let load = init_container(ds, "load").unwrap();
        assert_eq!(load.command[..2], ["/bin/sh".to_string(), "-ec".to_string()]);
        assert!(load.command[2].contains("insmod") && load.command[2].contains("no speaker.ko for kernel"));
        assert_eq!(load.mounts, vec![("opt".to_string(), "/host/opt/speaker/bin".to_string())]);
    }

    #[test]
    fn example_deployment_uses_the_runtimeclass_and_profiles_that_exist() {
        let docs = all();
        let d = get(&docs, "Deployment");
        let tmpl = &d["spec"]["template"];
        for (k, v) in d["spec"]["selector"]["matchLabels"].as_mapping().unwrap() {
            assert_eq!(&tmpl["metadata"]["labels"][k.as_str().unwrap()], v);
        }
        assert_eq!(tmpl["spec"]["runtimeClassName"], get(&docs, "RuntimeClass")["metadata"]["name"]);
        let names: Vec<&str> = tmpl["spec"]["containers"].as_sequence().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
        let ann = tmpl["metadata"]["annotations"].as_mapping().unwrap();
        assert!(!ann.is_empty());
        for (k, v) in ann {
            let (k, v) = (k.as_str().unwrap(), v.as_str().expect("annotation values are strings"));
            assert!(speaker::runtime::bundle::is_known_annotation(k), "speaker-runtime would refuse annotation {k}");
            if let Some(c) = k.strip_prefix("io.speaker.profile.") {
                assert!(names.contains(&c), "{k} names no container of the pod ({names:?})");
            }
            if k.starts_with("io.speaker.profile") {
                let file = v.strip_prefix("/etc/speaker/profiles/").expect("profiles are the DaemonSet's copies");
                let p = deploy().join("../examples/profiles").join(file);
                let profile: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
                assert_eq!(profile["schema"], "speaker.profile/v1", "{}", p.display());
            }
        }
    }
}
