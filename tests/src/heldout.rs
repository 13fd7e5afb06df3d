//! `examples/services.sh`'s held-out workloads (issue 23), checked on the
//! host: defined, parseable by sh, never among the traced workloads.
fn var(name: &str) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/services.sh");
    let o = std::process::Command::new("bash").args(["-c", &format!(". {script} && printf %s \"${name}\"")]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn every_service_has_held_out_workloads_that_are_never_traced() {
    let services = var("services");
    assert_eq!(services.split_whitespace().count(), 4, "{services}");
    for svc in services.split_whitespace() {
        let traced = var(&format!("{svc}_workloads"));
        let heldout = var(&format!("{svc}_heldout"));
        let operator = var(&format!("{svc}_heldout_operator"));
        assert!(heldout.split_whitespace().count() >= 4, "{svc}: {heldout:?}");
        assert!(!var(&format!("{svc}_fatal")).is_empty(), "{svc}_fatal");
        for w in heldout.split_whitespace().chain(operator.split_whitespace()) {
            assert!(!traced.split_whitespace().any(|t| t == w), "{svc}: '{w}' is both traced and held out");
            let cmd = var(&format!("{svc}_heldout_{w}"));
            assert!(!cmd.is_empty(), "{svc}_heldout_{w} is not defined");
            let o = std::process::Command::new("sh").args(["-n", "-c", &cmd]).output().unwrap();
            assert!(o.status.success(), "{svc}_heldout_{w}: {}", String::from_utf8_lossy(&o.stderr));
        }
    }
    for (svc, w) in
        [("postgres", "vacuum_truncate"), ("postgres", "plpgsql"), ("mariadb", "kill"), ("nginx", "largefile"), ("redis", "clientkill")]
    {
        assert!(var(&format!("{svc}_heldout")).split_whitespace().any(|x| x == w), "{svc}: {w}");
    }
    assert!(var("postgres_heldout_vacuum_truncate").contains("VACUUM"));
    assert!(var("postgres_heldout_plpgsql").contains("$$ BEGIN"), "the dollar quotes survive sourcing");
}

/// The demo traces `<svc>_workloads` only.
#[test]
fn the_demo_traces_only_the_traced_workloads() {
    let demo = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../qemu/demo/oci-demo.sh")).unwrap();
    let traces: Vec<&str> = demo.lines().filter(|l| l.contains("speaker-ctl trace")).collect();
    assert!(!traces.is_empty());
    assert!(traces.iter().all(|l| !l.contains("heldout")), "{traces:?}");
    assert!(demo.contains("is also held out"));
}
