//! `healthcheck:`.

use super::value::{boolean, duration, expected, fields, items, string, uint};
use crate::compose::error::ComposeError;
use crate::compose::keys::Scope;
use crate::compose::model::{HealthTest, Healthcheck};
use crate::compose::path::KeyPath;
use serde_yaml::Value;

/// Parses a healthcheck mapping.
pub fn healthcheck(value: &Value, path: &KeyPath) -> Result<Healthcheck, ComposeError> {
    let mut check = Healthcheck::default();
    let mut disable = None;
    for (key, v, p) in fields(value, Scope::Healthcheck, path)? {
        match key.as_str() {
            "test" => check.test = Some(test(v, &p)?),
            "interval" => check.interval = Some(duration(v, &p)?),
            "timeout" => check.timeout = Some(duration(v, &p)?),
            "retries" => check.retries = Some(uint(v, &p)?),
            "start_period" => check.start_period = Some(duration(v, &p)?),
            "start_interval" => check.start_interval = Some(duration(v, &p)?),
            "disable" => disable = Some((boolean(v, &p)?, p)),
            _ => return Err(ComposeError::unsupported_key(p, None)),
        }
    }
    if let Some((true, p)) = disable {
        if check.test.as_ref().is_some_and(|t| *t != HealthTest::None) {
            return Err(ComposeError::invalid(
                &p,
                "`disable: true` cannot be combined with a `test`",
            ));
        }
        check.test = Some(HealthTest::None);
    }
    Ok(check)
}

fn test(value: &Value, path: &KeyPath) -> Result<HealthTest, ComposeError> {
    match value {
        Value::String(s) if s.trim().is_empty() => Err(ComposeError::invalid(path, "empty test")),
        Value::String(s) => Ok(HealthTest::CmdShell(s.clone())),
        Value::Sequence(_) => {
            let words: Vec<String> = items(value, path)?
                .into_iter()
                .map(|(v, p)| string(v, &p))
                .collect::<Result<_, _>>()?;
            match words.split_first() {
                Some((kind, args)) if kind == "CMD" && !args.is_empty() => {
                    Ok(HealthTest::Cmd(args.to_vec()))
                }
                Some((kind, [cmd])) if kind == "CMD-SHELL" => Ok(HealthTest::CmdShell(cmd.clone())),
                Some((kind, [])) if kind == "NONE" => Ok(HealthTest::None),
                _ => Err(ComposeError::invalid(
                    path,
                    "expected [\"CMD\", args...], [\"CMD-SHELL\", \"command\"] or [\"NONE\"]",
                )),
            }
        }
        _ => Err(expected("a string or a list", value, path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(text: &str) -> Result<Healthcheck, ComposeError> {
        let v: Value = serde_yaml::from_str(text).expect("yaml");
        healthcheck(&v, &KeyPath::from_keys(["healthcheck"]))
    }

    #[test]
    fn all_fields() {
        let h = parse(
            "{test: [\"CMD\", \"curl\", \"-f\", \"http://localhost\"], interval: 1m30s, timeout: 10s, retries: 3, start_period: 40s, start_interval: 5s}",
        )
        .expect("parses");
        assert_eq!(
            h.test,
            Some(HealthTest::Cmd(vec![
                "curl".into(),
                "-f".into(),
                "http://localhost".into()
            ]))
        );
        assert_eq!(h.interval, Some(Duration::from_secs(90)));
        assert_eq!(h.timeout, Some(Duration::from_secs(10)));
        assert_eq!(h.retries, Some(3));
        assert_eq!(h.start_period, Some(Duration::from_secs(40)));
        assert_eq!(h.start_interval, Some(Duration::from_secs(5)));
    }

    #[test]
    fn test_forms() {
        let shell = HealthTest::CmdShell("pg_isready -U postgres".into());
        assert_eq!(
            parse("{test: pg_isready -U postgres}")
                .expect("string")
                .test,
            Some(shell.clone())
        );
        assert_eq!(
            parse("{test: [CMD-SHELL, pg_isready -U postgres]}")
                .expect("list")
                .test,
            Some(shell)
        );
        assert_eq!(
            parse("{test: [NONE]}").expect("none").test,
            Some(HealthTest::None)
        );
        assert_eq!(parse("{interval: 5s}").expect("no test").test, None);
        for bad in [
            "{test: []}",
            "{test: [CMD]}",
            "{test: [SHELL, x]}",
            "{test: [CMD-SHELL, a, b]}",
            "{test: ''}",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn disable() {
        let h = parse("{disable: true}").expect("disable");
        assert!(h.is_disabled());
        assert_eq!(HealthTest::None.to_docker(), ["NONE"]);
        assert!(
            !parse("{disable: false, test: [CMD, x]}")
                .expect("enabled")
                .is_disabled()
        );
        assert!(parse("{disable: true, test: [CMD, x]}").is_err());
        assert_eq!(HealthTest::Cmd(vec!["x".into()]).to_docker(), ["CMD", "x"]);
        assert_eq!(
            HealthTest::CmdShell("x y".into()).to_docker(),
            ["CMD-SHELL", "x y"]
        );
    }
}
