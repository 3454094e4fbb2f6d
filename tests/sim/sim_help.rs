//! `dm-apply sim --help` groups its options: the simulator's own, faults, TLS, and the global options apart.

#[test]
fn sim_help_groups_tls_apart_from_the_global_options() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_dm-apply")).args(["sim", "--help"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let help = String::from_utf8_lossy(&o.stdout);
    let at = |h: &str| help.find(h).unwrap_or_else(|| panic!("no `{h}` in:\n{help}"));
    let (sim, faults, tls, global) =
        (at("\nSimulator:"), at("\nFaults and latency:"), at("\nTLS:"), at("\nGlobal options:"));
    assert!(sim < faults && faults < tls && tls < global, "{help}");
    let section = |from: usize, to: usize| &help[from..to];
    assert!(section(sim, faults).contains("--listen") && section(sim, faults).contains("--generation"), "{help}");
    assert!(section(faults, tls).contains("--fault-rate"), "{help}");
    let tls_part = section(tls, global);
    assert!(tls_part.contains("--tls-cert") && tls_part.contains("--tls-client-ca"), "{help}");
    for global_flag in ["--color", "--quiet", "--verbose"] {
        assert!(!tls_part.contains(global_flag), "{global_flag} among the TLS options:\n{help}");
        assert!(help[global..].contains(global_flag), "{global_flag} under Global options:\n{help}");
    }
}
