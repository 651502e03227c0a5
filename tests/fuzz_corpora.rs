//! Replays every committed fuzz corpus (`fuzz/corpus/<target>/`) and every input that once crashed a
//! target or broke one of its properties (`fuzz/regressions/<target>/`) through the target's entry
//! point, on the stable toolchain. The fuzzers themselves run with `scripts/fuzz.sh`.
#![cfg(feature = "fuzzing")]

use std::path::Path;

#[test]
fn every_corpus_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut failures = Vec::new();
    for (name, run) in sea_gcp::fuzzing::TARGETS {
        let dir = root.join("corpus").join(name);
        let entries =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("no corpus for {name} at {}: {e}", dir.display()));
        let regressions = std::fs::read_dir(root.join("regressions").join(name)).into_iter().flatten();
        let mut inputs = 0;
        for entry in entries.chain(regressions) {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            inputs += 1;
            if std::panic::catch_unwind(|| run(&data)).is_err() {
                failures.push(format!("{name}: {}", path.display()));
            }
        }
        assert!(inputs > 0, "the corpus of {name} is empty");
        eprintln!("{name}: {inputs} inputs replayed");
    }
    assert!(failures.is_empty(), "inputs that fail their target:\n{}", failures.join("\n"));
}
