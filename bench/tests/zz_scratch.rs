//! scratch (not committed): regenerate markdown + charts + re-serialised JSON from the reference results.
#![allow(clippy::unwrap_used)]
use std::path::Path;

fn copy(src: &Path, out: &Path, stem: &str) {
    std::fs::create_dir_all(out).unwrap();
    std::fs::copy(
        src.join(format!("{stem}.json")),
        out.join(format!("{stem}.json")),
    )
    .unwrap();
}

#[test]
fn scratch_regenerate() {
    let base = std::env::var("SCRATCH_OUT").unwrap();
    for dir in ["compare", "nginx", "compare-x"] {
        let out = Path::new(&base).join(dir);
        copy(&Path::new("/tmp/wta-ref").join(dir), &out, "results");
        bench::compare::replot(&out).unwrap();
        let r: bench::compare::CompareResults =
            serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap())
                .unwrap();
        std::fs::write(
            out.join("roundtrip.json"),
            serde_json::to_string_pretty(&r).unwrap(),
        )
        .unwrap();
    }
    for dir in ["c10k", "c10k-nginx", "c10k-x"] {
        let out = Path::new(&base).join(dir);
        copy(&Path::new("/tmp/wta-ref").join(dir), &out, "c10k");
        bench::output::rewrite_markdown(&out, "c10k", bench::c10k::markdown).unwrap();
        let r: bench::c10k::C10kResults =
            serde_json::from_str(&std::fs::read_to_string(out.join("c10k.json")).unwrap()).unwrap();
        std::fs::write(
            out.join("roundtrip.json"),
            serde_json::to_string_pretty(&r).unwrap(),
        )
        .unwrap();
    }
    for dir in ["soak", "soak-x"] {
        let out = Path::new(&base).join(dir);
        copy(&Path::new("/tmp/wta-ref").join(dir), &out, "soak");
        bench::output::rewrite_markdown(&out, "soak", bench::soak::markdown).unwrap();
        let r: bench::soak::SoakResults =
            serde_json::from_str(&std::fs::read_to_string(out.join("soak.json")).unwrap()).unwrap();
        std::fs::write(
            out.join("roundtrip.json"),
            serde_json::to_string_pretty(&r).unwrap(),
        )
        .unwrap();
    }
}
