//! OCI images made from local files, for a node without a registry: one
//! uncompressed layer (a tarball of a root directory), its config and
//! manifest, in an OCI image layout packed as a tarball that `ctr images
//! import` reads (image-spec v1.1 "image layout"; the name containerd
//! gives the image is the index entry's `io.containerd.image.name`).

use std::fs;
use std::io::Read;
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// What an image runs: its entrypoint, command, environment.
pub struct ImageConfig<'a> {
    pub entrypoint: &'a [&'a str],
    pub cmd: &'a [&'a str],
    pub env: &'a [&'a str],
}

/// `sha256:HEX` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// `sha256:HEX` and size of the file at `path`, read in blocks.
pub fn digest_file(path: &Path) -> Result<(String, u64), String> {
    let mut f = fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        size += n as u64;
    }
    Ok((format!("sha256:{:x}", h.finalize()), size))
}

fn blob_path(layout: &Path, digest: &str) -> std::path::PathBuf {
    layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
}

/// Writes `bytes` as a blob of `layout`; returns its descriptor.
fn put_blob(layout: &Path, media_type: &str, bytes: &[u8]) -> Result<Value, String> {
    let d = digest(bytes);
    fs::write(blob_path(layout, &d), bytes).map_err(|e| format!("blob {d}: {e}"))?;
    Ok(json!({ "mediaType": media_type, "digest": d, "size": bytes.len() }))
}

/// The image config (image-spec's `config.json`) for a single layer with
/// diff id `layer_digest` (uncompressed: the layer's own digest).
pub fn config_json(layer_digest: &str, cfg: &ImageConfig) -> Value {
    json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": cfg.entrypoint,
            "Cmd": cfg.cmd,
            "Env": cfg.env,
            "WorkingDir": "/",
        },
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
        "history": [{ "created_by": "speaker-cri-tests: a tarball of local files" }],
    })
}

/// Builds the OCI image layout of image `name` (e.g.
/// `docker.io/library/speaker-nginx:1`) in directory `layout` from the
/// layer tarball `layer_tar` (moved into the layout), and packs it as
/// `out_tar`.  Returns the manifest's digest.
pub fn build_layout(name: &str, layer_tar: &Path, cfg: &ImageConfig, layout: &Path, out_tar: &Path) -> Result<String, String> {
    let _ = fs::remove_dir_all(layout);
    fs::create_dir_all(layout.join("blobs/sha256")).map_err(|e| format!("{}: {e}", layout.display()))?;
    let (layer_digest, layer_size) = digest_file(layer_tar)?;
    fs::rename(layer_tar, blob_path(layout, &layer_digest)).map_err(|e| format!("moving {} into the layout: {e}", layer_tar.display()))?;
    let layer = json!({ "mediaType": LAYER, "digest": layer_digest, "size": layer_size });
    let config = put_blob(layout, CONFIG, config_json(&layer_digest, cfg).to_string().as_bytes())?;
    let manifest = json!({ "schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": [layer] });
    let mut manifest_desc = put_blob(layout, MANIFEST, manifest.to_string().as_bytes())?;
    let tag = name.rsplit_once(':').map(|(_, t)| t).unwrap_or("latest");
    manifest_desc["annotations"] = json!({ "io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag });
    manifest_desc["platform"] = json!({ "architecture": "amd64", "os": "linux" });
    let index = json!({ "schemaVersion": 2, "mediaType": INDEX, "manifests": [manifest_desc.clone()] });
    fs::write(layout.join("index.json"), index.to_string()).map_err(|e| format!("index.json: {e}"))?;
    fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).map_err(|e| format!("oci-layout: {e}"))?;
    let o = std::process::Command::new("tar")
        .arg("-C")
        .arg(layout)
        .arg("-cf")
        .arg(out_tar)
        .args(["oci-layout", "index.json", "blobs"])
        .output()
        .map_err(|e| format!("tar: {e}"))?;
    if !o.status.success() {
        return Err(format!("tar of {}: {}", layout.display(), String::from_utf8_lossy(&o.stderr)));
    }
    Ok(manifest_desc["digest"].as_str().unwrap_or_default().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_names_the_image_and_chains_the_digests() {
        let dir = std::env::temp_dir().join(format!("speaker-cri-image-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("root/bin")).unwrap();
        fs::write(dir.join("root/bin/hello"), "hi").unwrap();
        let layer = dir.join("layer.tar");
        assert!(std::process::Command::new("tar")
            .arg("-C")
            .arg(dir.join("root"))
            .arg("-cf")
            .arg(&layer)
            .arg(".")
            .status()
            .unwrap()
            .success());
        let (layer_digest, _) = digest_file(&layer).unwrap();
        let cfg = ImageConfig { entrypoint: &["/bin/hello"], cmd: &[], env: &["PATH=/bin"] };
        let m = build_layout("docker.io/library/t:1", &layer, &cfg, &dir.join("layout"), &dir.join("t.tar")).unwrap();
        let index: Value = serde_json::from_str(&fs::read_to_string(dir.join("layout/index.json")).unwrap()).unwrap();
        assert_eq!(index["manifests"][0]["digest"], m.as_str());
        assert_eq!(index["manifests"][0]["annotations"]["io.containerd.image.name"], "docker.io/library/t:1");
        let manifest_bytes = fs::read(blob_path(&dir.join("layout"), &m)).unwrap();
        assert_eq!(digest(&manifest_bytes), m);
        let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
        assert_eq!(manifest["layers"][0]["digest"], layer_digest.as_str());
        let config: Value =
            serde_json::from_slice(&fs::read(blob_path(&dir.join("layout"), manifest["config"]["digest"].as_str().unwrap())).unwrap())
                .unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][0], layer_digest.as_str());
        assert_eq!(config["config"]["Entrypoint"][0], "/bin/hello");
        assert!(dir.join("t.tar").metadata().unwrap().len() > 0);
        fs::remove_dir_all(&dir).unwrap();
    }
}
