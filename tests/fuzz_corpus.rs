//! Replays the fuzz targets' committed seed corpus and every regression
//! input (`fuzz/regressions/TARGET/`, one file per crash the fuzzer found)
//! through the same entry points the fuzzer runs, and then a few thousand
//! deterministic mutations of the seeds: a stable-toolchain smoke run of
//! what `fuzz/` explores for longer.

use std::path::Path;

fn inputs(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

#[test]
fn fuzz_targets_survive_the_corpus_regressions_and_mutations() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut rng = fastrand::Rng::with_seed(0x0067_7270_6364_6f63);
    for (name, run) in grpcdoc::fuzzing::TARGETS {
        let seeds = inputs(&root.join("corpus").join(name));
        assert!(!seeds.is_empty(), "{name}: no seed corpus");
        for input in seeds
            .iter()
            .chain(&inputs(&root.join("regressions").join(name)))
        {
            run(input);
        }
        for _ in 0..3000 {
            let mut m = seeds[rng.usize(..seeds.len())].clone();
            for _ in 0..rng.usize(1..8) {
                match rng.u8(..4) {
                    0 if !m.is_empty() => {
                        let i = rng.usize(..m.len());
                        m[i] = rng.u8(..);
                    }
                    1 => {
                        let i = rng.usize(..=m.len());
                        m.insert(i, rng.u8(..));
                    }
                    2 if !m.is_empty() => {
                        let i = rng.usize(..m.len());
                        m.truncate(i);
                    }
                    _ => {
                        let other = &seeds[rng.usize(..seeds.len())];
                        let i = rng.usize(..=m.len());
                        m.splice(i..i, other.iter().copied().take(64));
                    }
                }
            }
            run(&m);
        }
    }
}
