use crate::SpecError;

/// What `--security-opt` entries ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityOpts {
    /// `seccomp=unconfined`.
    pub seccomp_unconfined: bool,
    /// `seccomp=<profile JSON>` (the CLI sends the file's contents).
    pub seccomp_profile: Option<String>,
    /// `apparmor=<profile>`.
    pub apparmor_profile: Option<String>,
    /// `no-new-privileges[=true|false]`.
    pub no_new_privileges: Option<bool>,
    /// `systempaths=unconfined`: no masked or read-only paths.
    pub unmask_system_paths: bool,
}

/// Parses `--security-opt` values (`key=value`, or the legacy `key:value`).
pub fn parse_security_opts(opts: &[String]) -> Result<SecurityOpts, SpecError> {
    let mut out = SecurityOpts::default();
    for opt in opts {
        if opt == "no-new-privileges" {
            out.no_new_privileges = Some(true);
            continue;
        }
        let (k, v) = opt
            .split_once('=')
            .or_else(|| opt.split_once(':'))
            .ok_or_else(|| SpecError::SecurityOpt {
                kind: 1,
                opt: opt.clone(),
            })?;
        match k {
            "seccomp" if v == "unconfined" => out.seccomp_unconfined = true,
            "seccomp" => out.seccomp_profile = Some(v.to_string()),
            "apparmor" => out.apparmor_profile = Some(v.to_string()),
            "no-new-privileges" => {
                out.no_new_privileges = Some(match v {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(SpecError::SecurityOpt {
                            kind: 2,
                            opt: opt.clone(),
                        });
                    }
                })
            }
            "systempaths" if v == "unconfined" => out.unmask_system_paths = true,
            // SELinux labels have no effect on a host without SELinux.
            "label" => {}
            _ => {
                return Err(SpecError::SecurityOpt {
                    kind: 2,
                    opt: opt.clone(),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(opts: &[&str]) -> Result<SecurityOpts, SpecError> {
        parse_security_opts(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn forms() {
        let o = p(&[
            "no-new-privileges",
            "seccomp=unconfined",
            "apparmor=my-profile",
        ])
        .unwrap();
        assert_eq!(o.no_new_privileges, Some(true));
        assert!(o.seccomp_unconfined);
        assert_eq!(o.apparmor_profile.as_deref(), Some("my-profile"));
        assert_eq!(
            p(&["apparmor:legacy"]).unwrap().apparmor_profile.as_deref(),
            Some("legacy")
        );
        assert_eq!(
            p(&["no-new-privileges=false"]).unwrap().no_new_privileges,
            Some(false)
        );
        assert_eq!(
            p(&["bogus"]).unwrap_err().to_string(),
            r#"invalid --security-opt 1: "bogus""#
        );
        assert_eq!(
            p(&["nope=1"]).unwrap_err().to_string(),
            r#"invalid --security-opt 2: "nope=1""#
        );
        assert!(p(&["no-new-privileges=maybe"]).is_err());
    }
}
