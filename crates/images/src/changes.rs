use std::collections::BTreeMap;

use crate::{ContainerConfig, ImageError};

/// Applies `docker import --change` / `docker commit --change` instructions (ENV, WORKDIR,
/// CMD, ENTRYPOINT, USER, LABEL, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK) to an image's
/// container config. HEALTHCHECK lands in `extra["Healthcheck"]`, in Docker's shape.
pub fn apply_changes(config: &mut ContainerConfig, changes: &[String]) -> Result<(), ImageError> {
    for change in changes {
        let change_trim = change.trim();
        if change_trim.is_empty() {
            continue;
        }
        let bad = |reason: &str| ImageError::BadChange {
            change: change.clone(),
            reason: reason.to_string(),
        };
        let (instr, rest) = change_trim
            .split_once(char::is_whitespace)
            .map(|(i, r)| (i, r.trim()))
            .unwrap_or((change_trim, ""));
        match instr.to_ascii_uppercase().as_str() {
            "ENV" => {
                for (k, v) in key_values(rest).map_err(|r| bad(&r))? {
                    let env = config.env.get_or_insert_with(Vec::new);
                    let prefix = format!("{k}=");
                    env.retain(|e| !e.starts_with(&prefix));
                    env.push(format!("{k}={v}"));
                }
            }
            "LABEL" => {
                for (k, v) in key_values(rest).map_err(|r| bad(&r))? {
                    config.labels.get_or_insert_with(BTreeMap::new).insert(k, v);
                }
            }
            "WORKDIR" => {
                if rest.is_empty() {
                    return Err(bad("WORKDIR needs a path"));
                }
                config.working_dir = if rest.starts_with('/') {
                    rest.to_string()
                } else {
                    format!("{}/{rest}", config.working_dir.trim_end_matches('/'))
                };
            }
            "USER" => config.user = rest.to_string(),
            "STOPSIGNAL" => config.stop_signal = Some(rest.to_string()),
            "CMD" => config.cmd = Some(command(rest).map_err(|r| bad(&r))?),
            "ENTRYPOINT" => config.entrypoint = Some(command(rest).map_err(|r| bad(&r))?),
            "EXPOSE" => {
                for port in rest.split_whitespace() {
                    let port = if port.contains('/') {
                        port.to_string()
                    } else {
                        format!("{port}/tcp")
                    };
                    config
                        .exposed_ports
                        .get_or_insert_with(BTreeMap::new)
                        .insert(port, serde_json::json!({}));
                }
            }
            "VOLUME" => {
                let paths: Vec<String> = if rest.starts_with('[') {
                    serde_json::from_str(rest).map_err(|e| bad(&e.to_string()))?
                } else {
                    rest.split_whitespace().map(str::to_string).collect()
                };
                for p in paths {
                    config
                        .volumes
                        .get_or_insert_with(BTreeMap::new)
                        .insert(p, serde_json::json!({}));
                }
            }
            "HEALTHCHECK" => {
                let check = healthcheck(rest).map_err(|r| bad(&r))?;
                config.extra.insert("Healthcheck".into(), check);
            }
            other => return Err(bad(&format!("{other} is not a valid change command"))),
        }
    }
    Ok(())
}

/// `["a", "b"]` (exec form) or `a b` (shell form, run by /bin/sh -c).
fn command(rest: &str) -> Result<Vec<String>, String> {
    if rest.starts_with('[')
        && let Ok(v) = serde_json::from_str::<Vec<String>>(rest)
    {
        return Ok(v);
    }
    if rest.is_empty() {
        return Err("needs a command".to_string());
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), rest.to_string()])
}

/// `HEALTHCHECK [--interval=D] [--timeout=D] [--start-period=D] [--start-interval=D]
/// [--retries=N] CMD command` or `HEALTHCHECK NONE`, as Docker's `Config.Healthcheck`
/// (durations in nanoseconds, unset ones left out).
fn healthcheck(rest: &str) -> Result<serde_json::Value, String> {
    let mut check = serde_json::Map::new();
    let mut rest = rest.trim_start();
    while let Some(flag) = rest.strip_prefix("--") {
        let (word, after) = flag.split_once(char::is_whitespace).unwrap_or((flag, ""));
        rest = after.trim_start();
        let (name, value) = word
            .split_once('=')
            .ok_or_else(|| format!("missing a value for --{word}"))?;
        let key = match name {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            "start-interval" => "StartInterval",
            "retries" => {
                let n: i64 = value
                    .parse()
                    .map_err(|_| format!("invalid --retries value {value:?}"))?;
                if n < 0 {
                    return Err(format!("--retries cannot be negative ({n})"));
                }
                if n != 0 {
                    check.insert("Retries".into(), n.into());
                }
                continue;
            }
            other => return Err(format!("Unknown flag: {other}")),
        };
        let ns = go_parse_duration(value)?;
        if ns != 0 && ns < 1_000_000 {
            return Err(format!("Interval {name:?} cannot be less than 1ms"));
        }
        if ns != 0 {
            check.insert(key.into(), ns.into());
        }
    }
    let (kind, command_text) = rest
        .split_once(char::is_whitespace)
        .map(|(k, c)| (k, c.trim()))
        .unwrap_or((rest, ""));
    let test: Vec<String> = match kind.to_ascii_uppercase().as_str() {
        "NONE" if command_text.is_empty() => vec!["NONE".into()],
        "NONE" => return Err("HEALTHCHECK NONE takes no arguments".into()),
        "CMD" if command_text.is_empty() => return Err("needs a command".into()),
        "CMD" => match serde_json::from_str::<Vec<String>>(command_text) {
            Ok(argv) if command_text.starts_with('[') => {
                std::iter::once("CMD".to_string()).chain(argv).collect()
            }
            _ => vec!["CMD-SHELL".into(), command_text.to_string()],
        },
        other => return Err(format!("Unknown type {other:?} in HEALTHCHECK (try CMD)")),
    };
    check.insert("Test".into(), test.into());
    Ok(serde_json::Value::Object(check))
}

/// Go's `time.ParseDuration`, in nanoseconds: `1s`, `1m30s`, `1.5h`, `500ms`, `0`.
fn go_parse_duration(text: &str) -> Result<i64, String> {
    let bad = || format!("time: invalid duration {text:?}");
    let (negative, mut s) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !s.is_empty() {
        let number_len = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("time: missing unit in duration {text:?}"))?;
        let number: f64 = s[..number_len].parse().map_err(|_| bad())?;
        s = &s[number_len..];
        let unit_len = s
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(s.len());
        let scale = match &s[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            unit => return Err(format!("time: unknown unit {unit:?} in duration {text:?}")),
        };
        s = &s[unit_len..];
        total += number * scale;
    }
    if total > i64::MAX as f64 {
        return Err(bad());
    }
    let ns = total.round() as i64;
    Ok(if negative { -ns } else { ns })
}

/// `K=V K2="V 2"` or the legacy `K V with spaces`.
fn key_values(rest: &str) -> Result<Vec<(String, String)>, String> {
    if rest.is_empty() {
        return Err("needs KEY=VALUE".to_string());
    }
    let first = rest.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (k, v) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| "needs KEY=VALUE or KEY VALUE".to_string())?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    let mut out = Vec::new();
    for word in split_words(rest)? {
        let (k, v) = word
            .split_once('=')
            .ok_or_else(|| format!("{word} is not KEY=VALUE"))?;
        if k.is_empty() {
            return Err("an empty key".to_string());
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Splits on white space outside quotes, removing the quotes and backslash escapes.
fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    let mut in_word = false;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".to_string());
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(changes: &[&str]) -> ContainerConfig {
        let mut c = ContainerConfig::default();
        apply_changes(
            &mut c,
            &changes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .unwrap();
        c
    }

    #[test]
    fn the_acceptance_changes() {
        let c = apply(&[
            "ENV GREETING=hi",
            "WORKDIR /srv",
            r#"CMD ["sh","-c","echo $GREETING from $(pwd)"]"#,
        ]);
        assert_eq!(c.env, Some(vec!["GREETING=hi".to_string()]));
        assert_eq!(c.working_dir, "/srv");
        assert_eq!(
            c.cmd.unwrap(),
            vec!["sh", "-c", "echo $GREETING from $(pwd)"]
        );
    }

    #[test]
    fn shell_form_env_forms_labels_ports_volumes() {
        let c = apply(&[
            "CMD echo hi",
            "ENTRYPOINT [\"/bin/tini\"]",
            "ENV A=1 B=\"two words\"",
            "ENV LEGACY some value",
            "ENV A=3",
            "LABEL k=v",
            "EXPOSE 80 53/udp",
            "VOLUME /data /logs",
            "USER app",
            "WORKDIR /a",
            "WORKDIR b",
        ]);
        assert_eq!(c.cmd.unwrap(), vec!["/bin/sh", "-c", "echo hi"]);
        assert_eq!(c.entrypoint.unwrap(), vec!["/bin/tini"]);
        assert_eq!(
            c.env.unwrap(),
            vec!["B=two words", "LEGACY=some value", "A=3"]
        );
        assert_eq!(c.labels.unwrap()["k"], "v");
        let ports = c.exposed_ports.unwrap();
        assert!(ports.contains_key("80/tcp") && ports.contains_key("53/udp"));
        assert_eq!(c.volumes.unwrap().len(), 2);
        assert_eq!(c.user, "app");
        assert_eq!(c.working_dir, "/a/b");
    }

    #[test]
    fn healthchecks() {
        let c = apply(&["HEALTHCHECK --interval=1s --retries=1 CMD test -e /etc/passwd"]);
        assert_eq!(
            c.extra["Healthcheck"],
            serde_json::json!({"Test": ["CMD-SHELL", "test -e /etc/passwd"], "Interval": 1_000_000_000i64, "Retries": 1})
        );
        let c = apply(&[
            r#"HEALTHCHECK --timeout=1m30s --start-period=500ms --start-interval=2s CMD ["true", "x"]"#,
        ]);
        assert_eq!(
            c.extra["Healthcheck"],
            serde_json::json!({"Test": ["CMD", "true", "x"], "Timeout": 90_000_000_000i64,
                "StartPeriod": 500_000_000, "StartInterval": 2_000_000_000i64})
        );
        let c = apply(&["HEALTHCHECK NONE"]);
        assert_eq!(
            c.extra["Healthcheck"],
            serde_json::json!({"Test": ["NONE"]})
        );
        for bad in [
            "HEALTHCHECK",
            "HEALTHCHECK NONE x",
            "HEALTHCHECK RUN true",
            "HEALTHCHECK --interval=1 CMD true",
            "HEALTHCHECK --interval=10us CMD true",
            "HEALTHCHECK --retries=-1 CMD true",
            "HEALTHCHECK --nope=1 CMD true",
        ] {
            let mut c = ContainerConfig::default();
            assert!(apply_changes(&mut c, &[bad.to_string()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(go_parse_duration("0"), Ok(0));
        assert_eq!(go_parse_duration("1s"), Ok(1_000_000_000));
        assert_eq!(go_parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(go_parse_duration("1h2m3s"), Ok(3_723_000_000_000));
        assert_eq!(go_parse_duration("-2ms"), Ok(-2_000_000));
        assert!(go_parse_duration("1").is_err() && go_parse_duration("1x").is_err());
        assert!(go_parse_duration("").is_err() && go_parse_duration("s").is_err());
    }

    #[test]
    fn bad_changes_are_refused() {
        for bad in ["RUN echo", "ENV", "CMD", "ENV A=\"x", "WORKDIR"] {
            let mut c = ContainerConfig::default();
            assert!(apply_changes(&mut c, &[bad.to_string()]).is_err(), "{bad}");
        }
    }
}
