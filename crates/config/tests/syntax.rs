//! The `.jcfg` syntax, one construct at a time, through the public API.

use jano_config::{ConfigError, Group, Jcfg, Value};

fn parse(text: &str) -> Jcfg {
    match Jcfg::parse(text, "test.jcfg") {
        Ok(cfg) => cfg,
        Err(e) => panic!("unexpected error: {e}\n--- input ---\n{text}"),
    }
}

fn error(text: &str) -> String {
    match Jcfg::parse(text, "janus.jcfg") {
        Ok(cfg) => panic!("expected an error, parsed {cfg:?}"),
        Err(e) => e.to_string(),
    }
}

fn general(text: &str) -> Group {
    parse(&format!("general: {{\n{text}\n}}"))
        .category("general")
        .cloned()
        .unwrap()
}

#[test]
fn categories_with_dashes_underscores_digits() {
    let cfg = parse("general: {}\nroom-1234: { a = 1 }\nmy_cat_2: {}\nrtp-sample: {}");
    let names: Vec<&str> = cfg.categories().map(|(n, _)| n).collect();
    assert_eq!(names, ["general", "room-1234", "my_cat_2", "rtp-sample"]);
    assert_eq!(cfg.get_int("room-1234", "a"), Some(1));
    assert!(cfg.category("missing").is_none());
}

#[test]
fn colon_or_equals_for_items_and_groups() {
    let cfg = parse("general = { a: 1; b = 2 }");
    assert_eq!(cfg.get_int("general", "a"), Some(1));
    assert_eq!(cfg.get_int("general", "b"), Some(2));
}

#[test]
fn every_scalar_kind() {
    let g = general(
        r#"s = "text"
        i = 42
        neg = -7
        hex = 0xFF
        long = 123L
        longlong = 0x10LL
        f = 3.25
        exp = 1e-3
        t = true
        f2 = False
        up = TRUE"#,
    );
    assert_eq!(g.get("s"), Some(&Value::Str("text".into())));
    assert_eq!(g.get("i"), Some(&Value::Int(42)));
    assert_eq!(g.get("neg"), Some(&Value::Int(-7)));
    assert_eq!(g.get("hex"), Some(&Value::Int(255)));
    assert_eq!(g.get("long"), Some(&Value::Int(123)));
    assert_eq!(g.get("longlong"), Some(&Value::Int(16)));
    assert_eq!(g.get("f"), Some(&Value::Float(3.25)));
    assert_eq!(g.get("exp"), Some(&Value::Float(0.001)));
    assert_eq!(g.get("t"), Some(&Value::Bool(true)));
    assert_eq!(g.get("f2"), Some(&Value::Bool(false)));
    assert_eq!(g.get("up"), Some(&Value::Bool(true)));
}

#[test]
fn string_escapes_and_concatenation() {
    let g = general(r#"a = "q\"b\\n\nt\tr\rf\fx\x41" b = "one" "two"  "three""#);
    assert_eq!(g.get_str("a").as_deref(), Some("q\"b\\n\nt\tr\rf\u{c}xA"));
    assert_eq!(g.get_str("b").as_deref(), Some("onetwothree"));
    let g = general("c = \"multi\"\n   # comment between\n   \"line\"");
    assert_eq!(g.get_str("c").as_deref(), Some("multiline"));
    let g = general("d = \"has # and // inside\"");
    assert_eq!(g.get_str("d").as_deref(), Some("has # and // inside"));
}

#[test]
fn all_three_comment_styles() {
    let cfg = parse(
        "# hash comment\n// slash comment\n/* block\n comment */ general: { /* inline */ a = 1 # x\n b = 2 // y\n c /* odd */ = 3 }",
    );
    assert_eq!(cfg.get_int("general", "a"), Some(1));
    assert_eq!(cfg.get_int("general", "b"), Some(2));
    assert_eq!(cfg.get_int("general", "c"), Some(3));
}

#[test]
fn terminators_are_optional() {
    let cfg = parse("general: { a = 1; b = 2, c = 3\n d = \"x\"; };\nother: {},");
    assert_eq!(cfg.get_int("general", "c"), Some(3));
    assert_eq!(cfg.get_str("general", "d").as_deref(), Some("x"));
    assert!(cfg.category("other").is_some());
}

#[test]
fn arrays() {
    let g =
        general("a = [ \"/bin\", \"/etc\" ]\nb = [1, 2, 3,]\nc = []\nd = [ /bare/path, \"q\" ]");
    let a: Vec<_> = g.get("a").unwrap().as_items().unwrap().to_vec();
    assert_eq!(
        a,
        vec![Value::Str("/bin".into()), Value::Str("/etc".into())]
    );
    assert_eq!(g.get("b").unwrap().as_items().unwrap().len(), 3);
    assert_eq!(g.get("c"), Some(&Value::Array(vec![])));
    assert_eq!(
        g.get("d"),
        Some(&Value::Array(vec![
            Value::Str("/bare/path".into()),
            Value::Str("q".into())
        ]))
    );
}

#[test]
fn streaming_style_list_of_groups() {
    let cfg = parse(
        r#"mp: {
            media = (
                { type = "audio"; mid = "a"; port = 5102 },
                { type = "video", mid = "v1", port = 5104, }
            )
        }"#,
    );
    let media = cfg.category("mp").unwrap().get("media").unwrap();
    let Value::List(items) = media else {
        panic!("not a list: {media:?}")
    };
    assert_eq!(items.len(), 2);
    let second = items[1].as_group().unwrap();
    assert_eq!(second.get_str("mid").as_deref(), Some("v1"));
    assert_eq!(second.get_int("port"), Some(5104));
}

#[test]
fn mqtt_style_list_of_arrays() {
    let g = general(r#"add_transaction_user_properties = ( ["k","v"], ["k2", "v2"] )"#);
    let list = g.get("add_transaction_user_properties").unwrap();
    assert_eq!(
        list,
        &Value::List(vec![
            Value::Array(vec![Value::Str("k".into()), Value::Str("v".into())]),
            Value::Array(vec![Value::Str("k2".into()), Value::Str("v2".into())]),
        ])
    );
}

#[test]
fn nested_groups_and_empty_containers() {
    let cfg = parse("a: { b: { c: { d = 1 } }, l = (), e = {} }");
    let c = cfg
        .category("a")
        .and_then(|a| a.group("b"))
        .and_then(|b| b.group("c"))
        .unwrap();
    assert_eq!(c.get_int("d"), Some(1));
    assert_eq!(
        cfg.category("a").unwrap().get("l"),
        Some(&Value::List(vec![]))
    );
}

#[test]
fn janus_string_semantics() {
    let cfg = parse(
        "general: { i = 5, b = true, s = \"yes\", n = \"12201\", one = 1, f = 1.5, arr = [1] }",
    );
    assert_eq!(cfg.get_str("general", "i").as_deref(), Some("5"));
    assert_eq!(cfg.get_str("general", "b").as_deref(), Some("true"));
    assert_eq!(cfg.get_str("general", "arr"), None);
    assert_eq!(cfg.get_bool("general", "s"), Some(true));
    assert_eq!(cfg.get_bool("general", "one"), Some(true));
    assert_eq!(cfg.get_bool("general", "i"), Some(false));
    assert_eq!(cfg.get_int("general", "n"), Some(12201));
    assert_eq!(cfg.get_int("general", "s"), None);
    assert_eq!(cfg.get_int("general", "f"), None);
    assert_eq!(cfg.get_str("general", "missing"), None);
    assert_eq!(cfg.get_str("nocat", "i"), None);
}

#[test]
fn unquoted_words_are_strings() {
    // Debian's janus.transport.mqtt.jcfg ships exactly this.
    let g = general("certfile = /etc/ssl/certs/ssl-cert-snakeoil.pem\nmode = bind");
    assert_eq!(
        g.get_str("certfile").as_deref(),
        Some("/etc/ssl/certs/ssl-cert-snakeoil.pem")
    );
    assert_eq!(g.get_str("mode").as_deref(), Some("bind"));
    // `//` would start a comment: rather than silently truncating the value, refuse it.
    assert_eq!(
        error("url = ipc:///tmp/x.ipc"),
        "janus.jcfg:1:7: unquoted value 'ipc:' runs into a comment marker; put it in quotes"
    );
}

#[test]
fn error_messages_name_file_line_and_column() {
    let cases: &[(&str, &str)] = &[
        (
            "general: {\n\tdebug_level 4\n}",
            "janus.jcfg:2:14: expected '=' or ':' after setting name 'debug_level', found '4'",
        ),
        (
            "general: {\n  a = \"unterminated\n}\n",
            "janus.jcfg:2:7: unterminated string",
        ),
        (
            "general: {\n  a = 1\n",
            "janus.jcfg:3:1: unexpected end of file: missing '}' for the group opened at 1:10",
        ),
        (
            "general: {\n  a = [1, 2\n}",
            "janus.jcfg:3:1: expected ',' or ']' in array, found '}'",
        ),
        (
            "general: {\n  x = 1\n  x = 2\n}",
            "janus.jcfg:3:3: duplicate setting 'x'",
        ),
        ("general: {\n  = 5\n}", "janus.jcfg:2:3: expected a setting name, found '='"),
        ("a = 0x\n", "janus.jcfg:1:5: invalid number '0x'"),
        ("a = 1.2.3\n", "janus.jcfg:1:5: invalid number '1.2.3'"),
        ("/* never closed\n a = 1", "janus.jcfg:1:1: unterminated /* comment"),
        ("a = \"\\z\"", "janus.jcfg:1:6: invalid escape sequence '\\z'"),
        ("general: {\n  port =\n  ip = \"x\"\n}", "janus.jcfg:2:8: expected a value after '=' on the same line"),
        ("a = ( { b = 1 } { c = 2 } )", "janus.jcfg:1:17: expected ',' or ')' in list, found '{'"),
        ("a = [ [1] ]", "janus.jcfg:1:7: arrays [ ] can only hold strings, numbers and booleans, found an array; nest values in a list ( ) instead"),
        ("a = \u{1}", "janus.jcfg:1:5: expected a value, found '\\u{1}'"),
    ];
    for (input, expected) in cases {
        assert_eq!(&error(input), expected, "input: {input:?}");
    }
}

#[test]
fn syntax_error_fields() {
    let err = Jcfg::parse("general: {\n\ta 1\n}", "x.jcfg").unwrap_err();
    match err {
        ConfigError::Syntax {
            file, line, column, ..
        } => {
            assert_eq!((file.as_str(), line, column), ("x.jcfg", 2, 4));
        }
        other => panic!("wrong variant {other:?}"),
    }
}

#[test]
fn load_names_the_path_on_io_errors() {
    let err = Jcfg::load(std::path::Path::new("/nonexistent/dir/janus.jcfg")).unwrap_err();
    assert!(matches!(err, ConfigError::Io { .. }));
    assert!(
        err.to_string().starts_with("/nonexistent/dir/janus.jcfg: "),
        "{err}"
    );
}

#[test]
fn ini_fallback_has_the_same_shape() {
    let ini = Jcfg::parse_ini(
        "; legacy\n[general]\nhttp = yes\nport = 8088\nbase_path = /janus\n\n[admin]\nadmin_http = no\n",
        "janus.transport.http.cfg",
    )
    .unwrap();
    let jcfg = parse(
        "general: { http = \"yes\"; port = \"8088\"; base_path = \"/janus\" }\nadmin: { admin_http = \"no\" }",
    );
    assert_eq!(ini, jcfg);
    assert_eq!(ini.get_int("general", "port"), Some(8088));
    assert_eq!(ini.get_bool("admin", "admin_http"), Some(false));
    let err = Jcfg::parse_ini("[general]\nbroken line\n", "janus.cfg").unwrap_err();
    assert_eq!(
        err.to_string(),
        "janus.cfg:2:1: expected 'key = value' or '[section]'"
    );
}

#[test]
fn editing_and_writing_back() {
    let mut cfg = parse("general: { a = 1 }\nroom-1: { description = \"x\" }");
    cfg.category_mut("general")
        .unwrap()
        .insert("b", Value::List(vec![Value::Group(Group::new())]));
    cfg.root.remove("room-1");
    let text = cfg.to_text();
    let again = Jcfg::parse(&text, "rewritten.jcfg").unwrap();
    assert_eq!(again, cfg);
    assert!(again.category("room-1").is_none());
}
