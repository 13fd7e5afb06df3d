//! The node's images, made from the guest's own files (no registry): the
//! sandbox image (speaker-pause, under the name containerd's
//! `sandbox_image` says), nginx, redis and the probe image (busybox httpd
//! and a start script); each an OCI image tarball imported with `ctr -n
//! k8s.io images import`, as an air-gapped node preloads its images.

use std::fs;
use std::path::Path;

use speaker_cri_tests::image::{build_layout, ImageConfig};
use speaker_tests::guest::{run, Outcome};

pub const DIR: &str = "/srv/cri";

/// Where images are put together (tmpfs: the guest's disk has room for
/// containerd's copies only); each is removed once imported.
pub const WORK: &str = "/tmp/cri-images";

pub const NGINX: &str = "docker.io/library/speaker-nginx:1";
pub const REDIS: &str = "docker.io/library/speaker-redis:1";
pub const PROBE: &str = "docker.io/library/speaker-probe:1";

pub use speaker_tests::engines::ok;

fn write(path: &str, text: &str) -> Outcome {
    if let Some(d) = Path::new(path).parent() {
        fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    fs::write(path, text).map_err(|e| format!("{path}: {e}"))
}

use speaker_tests::engines::copy_with_libs;

/// A root with the directories every image has, speaker-probe (for exec)
/// and `bins` with their libraries.
pub fn base_root(name: &str, bins: &[&str]) -> Result<String, String> {
    let root = format!("{WORK}/roots/{name}");
    let _ = fs::remove_dir_all(&root);
    for d in ["bin", "proc", "sys", "dev", "etc", "tmp", "run", "data", "out"] {
        fs::create_dir_all(format!("{root}/{d}")).map_err(|e| e.to_string())?;
    }
    copy_with_libs("/opt/speaker/bin/speaker-probe", &root)?;
    ok("cp speaker-probe", &run("cp", &["/opt/speaker/bin/speaker-probe", &format!("{root}/bin/speaker-probe")]))?;
    for b in bins {
        copy_with_libs(b, &root)?;
    }
    write(&format!("{root}/etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")?;
    write(&format!("{root}/etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    Ok(root)
}

/// Packs `root` as image `name` and imports it into containerd's k8s.io
/// namespace (the CRI's).
pub fn import(name: &str, root: &str, cfg: &ImageConfig) -> Outcome {
    let short = name.rsplit('/').next().unwrap_or(name).replace(':', "-");
    let layer = format!("{WORK}/{short}.layer.tar");
    ok("tar", &run("tar", &["--numeric-owner", "-C", root, "-cf", &layer, "."]))?;
    let _ = fs::remove_dir_all(root);
    let tar = format!("{WORK}/{short}.oci.tar");
    let layout = format!("{WORK}/layouts/{short}");
    let built = build_layout(name, Path::new(&layer), cfg, Path::new(&layout), Path::new(&tar));
    let _ = fs::remove_dir_all(&layout);
    let _ = fs::remove_file(&layer);
    built?;
    let imported = run("ctr", &["-n", "k8s.io", "images", "import", &tar]);
    let _ = fs::remove_file(&tar);
    ok(&format!("ctr -n k8s.io images import {tar}"), &imported)?;
    Ok(())
}

pub const NGINX_CONF: &str = "worker_processes 1;\npid /run/nginx.pid;\nerror_log /var/log/nginx/error.log;\ndaemon off;\n\
events { worker_connections 64; }\nhttp { access_log off; server { listen 127.0.0.1:80; root /www; } }\n";

/// In the probe image: serve on 8080, and on SIGTERM record what the phase
/// allows (`getpriority`: denied when running, allowed at shutdown).
pub const START_SH: &str = "#!/bin/sh\n\
trap 'speaker-probe try getpriority > /out/term.txt; exit 0' TERM\n\
httpd -f -p 8080 -h /www &\n\
wait\n";

/// Every image, imported; `sandbox_image`: the name containerd's CRI
/// runs pod sandboxes from.
pub fn make_images(sandbox_image: &str) -> Outcome {
    let env: &[&str] = &["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"];

    let pause = base_root("pause", &[])?;
    ok("cp speaker-pause", &run("cp", &["/opt/speaker/bin/speaker-pause", &format!("{pause}/pause")]))?;
    import(sandbox_image, &pause, &ImageConfig { entrypoint: &["/pause"], cmd: &[], env })?;

    let nginx = base_root("nginx", &["/usr/sbin/nginx"])?;
    for d in ["etc/nginx", "www", "var/log/nginx", "var/lib/nginx"] {
        fs::create_dir_all(format!("{nginx}/{d}")).map_err(|e| e.to_string())?;
    }
    write(&format!("{nginx}/etc/nginx/nginx.conf"), NGINX_CONF)?;
    write(&format!("{nginx}/www/index.html"), &"speaker\n".repeat(64))?;
    import(NGINX, &nginx, &ImageConfig { entrypoint: &["/usr/sbin/nginx"], cmd: &[], env })?;

    let redis = base_root("redis", &["/usr/bin/redis-server"])?;
    let redis_cmd = ["/usr/bin/redis-server", "--bind", "127.0.0.1", "--port", "6379", "--dir", "/data", "--logfile", "/data/redis.log"];
    import(REDIS, &redis, &ImageConfig { entrypoint: &redis_cmd, cmd: &[], env })?;

    let probe = base_root("probe", &[])?;
    ok("cp busybox", &run("cp", &["/bin/busybox", &format!("{probe}/bin/busybox")]))?;
    for applet in ["sh", "httpd", "sleep", "cat", "test"] {
        std::os::unix::fs::symlink("busybox", format!("{probe}/bin/{applet}")).map_err(|e| e.to_string())?;
    }
    write(&format!("{probe}/start.sh"), START_SH)?;
    ok("chmod", &run("chmod", &["0755", &format!("{probe}/start.sh")]))?;
    write(&format!("{probe}/www/index.html"), &"speaker\n".repeat(64))?;
    import(PROBE, &probe, &ImageConfig { entrypoint: &["/start.sh"], cmd: &[], env })?;
    Ok(())
}
