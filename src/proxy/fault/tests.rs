//! The registry's promises: every fault parses from its documented forms,
//! its errors name the fault, the parameter and the accepted values, and
//! every registered fault round-trips through the command line's text,
//! toxiproxy's JSON and scenario YAML to the same fault.

use super::params::{Kind, Need, Param};
use super::*;

#[test]
fn parses_the_documented_forms() {
    let s: FaultSpec = "drop-ping:direction=upstream,acks=true,count=1"
        .parse()
        .unwrap();
    assert_eq!(s.name(), "drop-ping");
    assert_eq!(s.direction, Direction::Upstream);
    assert!(s.is_frame_level());
    assert_eq!(s.render(), "drop-ping:acks=true,count=1,direction=upstream");
    let s: FaultSpec = "latency:latency=50ms,jitter=10ms,probability=0.5"
        .parse()
        .unwrap();
    assert_eq!(s.probability, 0.5);
    assert!(!s.is_frame_level());
    // The help's first example, and toxiproxy's spellings.
    let ms: FaultSpec = "latency:ms=200".parse().unwrap();
    assert_eq!(ms, "latency:latency=200ms".parse().unwrap());
    let slow: FaultSpec = "slow_close:delay=1s".parse().unwrap();
    assert_eq!(slow.name(), "slow-close");
    assert_eq!(
        "slicer:size=3".parse::<FaultSpec>().unwrap(),
        "slicer:average_size=3".parse::<FaultSpec>().unwrap()
    );
    assert_eq!(
        "blackhole".parse::<FaultSpec>().unwrap().render(),
        "blackhole"
    );
    assert!("blackhole:existing=maybe".parse::<FaultSpec>().is_err());
}

#[test]
fn errors_name_the_fault_the_parameter_and_the_values() {
    for (bad, says) in [
        ("wobble", "unknown fault `wobble`; the faults are: latency"),
        ("latency", "latency: `latency` is required"),
        ("latency:latency=fast", "not a duration"),
        ("latency:latency=200", "not a duration"),
        (
            "latency:latency=1s,speed=2",
            "unknown parameter `speed`; it takes latency, jitter, direction, probability",
        ),
        (
            "drop-ping:acks=maybe",
            "drop-ping: `acks=maybe` must be true, false or all",
        ),
        (
            "drop-ping:direction=sideways",
            "must be upstream, downstream or both",
        ),
        ("drop-ping:probability=2", "from 0 to 1"),
        ("inject-goaway:code=OOPS", "not an HTTP/2 error code"),
        ("drop-frame:type=DATA", "cannot be dropped whole"),
        ("bandwidth:rate=0", "above 0"),
        ("bandwidth:rate=fast", "not a number of bytes"),
        ("slicer:size", "not key=value"),
        ("blackhole:after=soon", "after=soon"),
    ] {
        let e = bad.parse::<FaultSpec>().unwrap_err().0;
        assert!(e.contains(says), "{bad}: {e}");
    }
}

/// A value of each parameter that differs from its default.
fn sample(p: &Param) -> String {
    match p.kind {
        Kind::Duration(_) => "1500ms".into(),
        Kind::Bytes(f) => (if f > 1 { 64_000 } else { 3 }).to_string(),
        Kind::Number => "7".into(),
        Kind::Choice(words) => words
            .iter()
            .find(|w| !matches!(p.need, Need::Default(d) if d == **w))
            .unwrap_or(&words[0])
            .to_string(),
        Kind::Text => "bye now".into(),
        Kind::Code => "ENHANCE_YOUR_CALM".into(),
        Kind::Frame => "WINDOW_UPDATE".into(),
    }
}

/// Every registered fault, with every parameter set (and the common ones),
/// reads the same from the command line, from the toxic the API takes and
/// from a scenario file's mapping.
#[test]
fn every_registered_fault_round_trips_through_cli_api_and_yaml() {
    for d in REGISTRY {
        let mut pairs: Vec<String> = d
            .params
            .iter()
            .map(|p| format!("{}={}", p.name, sample(p)))
            .collect();
        pairs.extend([
            "direction=upstream".into(),
            "probability=0.25".into(),
            "after=2s".into(),
            "for=1m".into(),
        ]);
        let text = format!("{}:{}", d.name, pairs.join(","));
        let cli: FaultSpec = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        // The command line's canonical form reads back the same.
        let again: FaultSpec = cli.render().parse().unwrap();
        assert_eq!(again, cli, "{text} -> {}", cli.render());
        // toxiproxy's API: the toxic's body, as a client would send it.
        let toxic = cli.toxic();
        let wire: serde_json::Value =
            serde_json::from_str(&toxic.to_string()).expect("the toxic is JSON");
        let stream = match wire["stream"].as_str() {
            Some("upstream") => Direction::Upstream,
            Some("both") => Direction::Both,
            _ => Direction::Downstream,
        };
        let api = FaultSpec::from_toxic(
            wire["type"].as_str().unwrap(),
            stream,
            wire["toxicity"].as_f64().unwrap(),
            wire["attributes"].as_object().unwrap(),
        )
        .unwrap_or_else(|e| panic!("{text} via {wire}: {e:?}"));
        assert_eq!(api, cli, "{text} via the API: {wire}");
        // Scenario YAML, through the scenario files' parser.
        let yaml = cli.yaml();
        let y: FaultYaml = serde_saphyr::from_str(&yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"));
        let from_yaml = FaultSpec::from_yaml(&y).unwrap_or_else(|e| panic!("{yaml}: {e}"));
        assert_eq!(from_yaml, cli, "{text} via YAML: {yaml}");
    }
}

#[test]
fn yaml_takes_the_text_form_too_and_names_bad_mappings() {
    let y: FaultYaml = serde_saphyr::from_str("\"latency:latency=200ms\"").unwrap();
    assert_eq!(
        FaultSpec::from_yaml(&y).unwrap(),
        "latency:latency=200ms".parse().unwrap()
    );
    let y: FaultYaml =
        serde_saphyr::from_str("{drop-ping: {acks: true, count: 1, direction: upstream}}").unwrap();
    assert_eq!(
        FaultSpec::from_yaml(&y).unwrap(),
        "drop-ping:acks=true,count=1,direction=upstream"
            .parse()
            .unwrap()
    );
    let y: FaultYaml = serde_saphyr::from_str("{drop-goaway: }").unwrap();
    assert_eq!(FaultSpec::from_yaml(&y).unwrap().name(), "drop-goaway");
    let y: FaultYaml = serde_saphyr::from_str("{latency: {latency: 200}}").unwrap();
    let e = FaultSpec::from_yaml(&y).unwrap_err().0;
    assert!(e.contains("not a duration"), "{e}");
}

#[test]
fn the_list_fits_100_columns_and_names_every_fault() {
    let text = list();
    for line in text.lines() {
        assert!(
            line.chars().count() <= 100,
            "{} columns: {line}",
            line.chars().count()
        );
    }
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for d in REGISTRY {
        assert!(
            flat.contains(&format!("{}: {}", d.name, d.help)),
            "{}",
            d.name
        );
    }
    assert!(text.contains("inject-goaway: send a GOAWAY"));
}

/// The README's table of faults is the registry's.
#[test]
fn the_readme_lists_the_registry() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let table = markdown();
    assert!(
        readme.contains(&table),
        "README.md's table of faults differs from the registry; put this in its place:\n{table}"
    );
}
