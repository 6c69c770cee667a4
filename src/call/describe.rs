//! `call TARGET list` and `call TARGET describe SYMBOL`, as grpcurl prints
//! them: services (or a service's methods) one a line, and a symbol as
//! proto source.

use prost_reflect::{
    DescriptorPool, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    ServiceDescriptor,
};

/// The services (`service: None`), or one service's methods
/// (`pkg.Svc.Method`), one a line.
pub(crate) fn list(pool: &DescriptorPool, service: Option<&str>) -> Result<String, String> {
    let mut lines: Vec<String> = match service {
        None => pool.services().map(|s| s.full_name().to_string()).collect(),
        Some(name) => find_service(pool, name)?
            .methods()
            .map(|m| m.full_name().to_string())
            .collect(),
    };
    lines.sort();
    lines.dedup();
    Ok(lines.iter().map(|l| format!("{l}\n")).collect())
}

fn find_service(pool: &DescriptorPool, name: &str) -> Result<ServiceDescriptor, String> {
    pool.get_service_by_name(name.trim_start_matches('.'))
        .ok_or_else(|| {
            let names: Vec<String> = pool.services().map(|s| s.full_name().to_string()).collect();
            format!(
                "no service `{name}`; the services are: {}",
                names.join(", ")
            )
        })
}

/// A symbol (service, method, message, enum) as proto source, after
/// `NAME is a KIND:`; every service when `symbol` is `None`.
pub(crate) fn describe(pool: &DescriptorPool, symbol: Option<&str>) -> Result<String, String> {
    let Some(symbol) = symbol else {
        let mut out = String::new();
        for s in pool.services() {
            out.push_str(&describe_one(pool, s.full_name())?);
        }
        return Ok(out);
    };
    describe_one(pool, symbol.trim_start_matches('.'))
}

fn describe_one(pool: &DescriptorPool, name: &str) -> Result<String, String> {
    if let Some(s) = pool.get_service_by_name(name) {
        return Ok(format!("{name} is a service:\n{}", service(&s)));
    }
    if let Some(m) = pool.get_message_by_name(name) {
        return Ok(format!("{name} is a message:\n{}", message(&m, "")));
    }
    if let Some(e) = pool.get_enum_by_name(name) {
        return Ok(format!("{name} is an enum:\n{}", enumeration(&e, "")));
    }
    let method = name.rsplit_once(['.', '/']).and_then(|(svc, m)| {
        pool.get_service_by_name(svc)
            .and_then(|s| s.methods().find(|x| x.name() == m))
    });
    match method {
        Some(m) => Ok(format!("{} is a method:\n{}\n", m.full_name(), rpc(&m))),
        None => Err(format!(
            "no symbol `{name}` in the descriptors (a service, method, message or enum)"
        )),
    }
}

fn rpc(m: &MethodDescriptor) -> String {
    let stream = |yes: bool| if yes { "stream " } else { "" };
    format!(
        "rpc {} ( {}.{} ) returns ( {}.{} );",
        m.name(),
        stream(m.is_client_streaming()),
        m.input().full_name(),
        stream(m.is_server_streaming()),
        m.output().full_name()
    )
}

fn service(s: &ServiceDescriptor) -> String {
    let mut out = format!("service {} {{\n", s.name());
    for m in s.methods() {
        out.push_str(&format!("  {}\n", rpc(&m)));
    }
    out.push_str("}\n");
    out
}

fn field_type(f: &FieldDescriptor) -> String {
    let base = match f.kind() {
        Kind::Message(m) => format!(".{}", m.full_name()),
        Kind::Enum(e) => format!(".{}", e.full_name()),
        k => format!("{k:?}").to_ascii_lowercase(),
    };
    if f.is_map() {
        if let Kind::Message(entry) = f.kind() {
            let (k, v) = (entry.map_entry_key_field(), entry.map_entry_value_field());
            return format!("map<{}, {}>", field_type(&k), field_type(&v));
        }
    }
    if f.is_list() {
        format!("repeated {base}")
    } else {
        base
    }
}

fn message(m: &MessageDescriptor, indent: &str) -> String {
    let mut out = format!("{indent}message {} {{\n", m.name());
    for f in m.fields() {
        out.push_str(&format!(
            "{indent}  {} {} = {};\n",
            field_type(&f),
            f.name(),
            f.number()
        ));
    }
    for nested in m.child_messages().filter(|n| !n.is_map_entry()) {
        out.push_str(&message(&nested, &format!("{indent}  ")));
    }
    for e in m.child_enums() {
        out.push_str(&enumeration(&e, &format!("{indent}  ")));
    }
    out.push_str(&format!("{indent}}}\n"));
    out
}

fn enumeration(e: &EnumDescriptor, indent: &str) -> String {
    let mut out = format!("{indent}enum {} {{\n", e.name());
    for v in e.values() {
        out.push_str(&format!("{indent}  {} = {};\n", v.name(), v.number()));
    }
    out.push_str(&format!("{indent}}}\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> DescriptorPool {
        DescriptorPool::decode(crate::pb::FILE_DESCRIPTOR_SET).unwrap()
    }

    #[test]
    fn lists_and_describes_as_grpcurl() {
        let p = pool();
        let services = list(&p, None).unwrap();
        assert!(services.contains("helloworld.Greeter\n"), "{services}");
        assert_eq!(
            list(&p, Some("helloworld.Greeter")).unwrap(),
            "helloworld.Greeter.SayHello\n"
        );
        assert!(list(&p, Some("nope.Svc")).is_err());
        let d = describe(&p, Some("helloworld.Greeter")).unwrap();
        assert_eq!(
            d,
            "helloworld.Greeter is a service:\nservice Greeter {\n  rpc SayHello ( .helloworld.HelloRequest ) returns ( .helloworld.HelloReply );\n}\n"
        );
        let m = describe(&p, Some("grpcdoc.echo.v1.EchoRequest")).unwrap();
        assert!(m.contains("  .google.protobuf.Duration delay = 2;"), "{m}");
        assert!(m.contains("  string message = 1;"), "{m}");
        let r = describe(&p, Some("grpcdoc.echo.v1.Echo.ServerStream")).unwrap();
        assert!(
            r.contains("returns ( stream .grpcdoc.echo.v1.EchoResponse )"),
            "{r}"
        );
        assert!(describe(&p, Some("no.Such")).is_err());
    }
}
