//! Property tests: the loader never panics, whatever the bytes, and every positioned problem points inside the
//! file. Inputs: arbitrary bytes, YAML-ish noise, and mutated copies of the examples.

use proptest::prelude::*;

fn check(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.yaml");
    std::fs::write(&path, bytes).unwrap();
    let lines = bytes.split(|b| *b == b'\n').count();
    let a = dm_apply::config::analyze_with_env(&[path], &|_| Some("v".to_owned()));
    for p in a.errors.iter().chain(a.warnings.iter()) {
        assert!(p.line <= lines + 1, "line {} beyond the file ({lines} lines): {}", p.line, p.message);
        let _ = dm_apply::config::render_plain(p);
    }
}

const EXAMPLE: &str = include_str!("../../examples/sharded-optimistic.yaml");

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes);
    }

    #[test]
    fn yaml_like_noise(s in "[a-z_:\\- \\n\\t\\[\\]{}&*!|>'\"#$0-9]{0,400}") {
        check(s.as_bytes());
    }

    #[test]
    fn secret_heuristics_never_panic(s in "(\\PC|[\n{},:\"' -]|password|ssl_key_content|\\$\\{env:X\\}){0,80}") {
        for (o, l) in dm_apply::config::yaml::heuristic_secret_ranges(&s) {
            prop_assert!(s.is_char_boundary(o) && s.is_char_boundary(o + l));
        }
        check(s.as_bytes());
    }

    #[test]
    fn mutated_example(cut in 0usize..EXAMPLE.len(), at in 0usize..EXAMPLE.len(), c in "[ :\\-\\[{}&*\\t\\nx0]") {
        let mut s: String = EXAMPLE.chars().take(cut.max(at)).collect();
        let at = at.min(s.len());
        if s.is_char_boundary(at) {
            s.insert_str(at, &c);
        }
        check(s.as_bytes());
    }
}
