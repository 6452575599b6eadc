use crate::SpecError;

/// The numeric identity a process runs as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// Resolves Docker's `--user` (`name`, `uid`, `name:group`, `uid:gid`, ...) against the
/// container's `/etc/passwd` and `/etc/group` contents, as dockerd does: a numeric uid needs no
/// passwd entry; a name must exist; the primary gid comes from passwd unless a group is given;
/// supplementary groups are the primary group (as containerd's `ensureAdditionalGids` puts
/// it first, so `id` shows it as dockerd's containers do), those listing the user, and
/// `group_add`.
pub fn resolve_user(
    spec: &str,
    passwd: &str,
    group: &str,
    group_add: &[String],
) -> Result<ResolvedUser, SpecError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let passwd_entries: Vec<Vec<&str>> = passwd
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 4)
        .collect();
    let group_entries: Vec<Vec<&str>> = group
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
        .filter(|f: &Vec<&str>| f.len() >= 3)
        .collect();

    let found = passwd_entries
        .iter()
        .find(|f| f[0] == user_part || (user_part.parse::<u32>().is_ok() && f[2] == user_part));
    let (uid, mut gid, name) = match (found, user_part.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse()
                .map_err(|_| SpecError::NoSuchUser(user_part.into()))?,
            f[3].parse().unwrap_or(0),
            Some(f[0].to_string()),
        ),
        (None, Ok(n)) => (n, 0, None),
        (None, Err(_)) => return Err(SpecError::NoSuchUser(user_part.into())),
    };
    if let Some(g) = group_part.filter(|g| !g.is_empty()) {
        gid = lookup_group(g, &group_entries)?;
    }
    let mut additional = vec![gid];
    if group_part.is_none()
        && let Some(n) = &name
    {
        for f in &group_entries {
            let member = f.get(3).is_some_and(|m| m.split(',').any(|m| m == n));
            if member
                && let Ok(g) = f[2].parse::<u32>()
                && g != gid
                && !additional.contains(&g)
            {
                additional.push(g);
            }
        }
    }
    for g in group_add {
        let g = lookup_group(g, &group_entries)?;
        if !additional.contains(&g) {
            additional.push(g);
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids: additional,
    })
}

fn lookup_group(g: &str, groups: &[Vec<&str>]) -> Result<u32, SpecError> {
    if let Some(f) = groups.iter().find(|f| f[0] == g) {
        return f[2].parse().map_err(|_| SpecError::NoSuchGroup(g.into()));
    }
    g.parse().map_err(|_| SpecError::NoSuchGroup(g.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\napp:x:1000:\nwheel:x:10:app\n";

    #[test]
    fn names_and_numbers() {
        assert_eq!(
            resolve_user("", PASSWD, GROUP, &[]).unwrap(),
            ResolvedUser {
                additional_gids: vec![0],
                ..Default::default()
            }
        );
        let app = resolve_user("app", PASSWD, GROUP, &[]).unwrap();
        assert_eq!(
            (app.uid, app.gid, app.additional_gids),
            (1000, 1000, vec![1000, 10])
        );
        let n = resolve_user("1000:1000", PASSWD, GROUP, &[]).unwrap();
        assert_eq!((n.uid, n.gid), (1000, 1000));
        let unknown_uid = resolve_user("4242", PASSWD, GROUP, &[]).unwrap();
        assert_eq!((unknown_uid.uid, unknown_uid.gid), (4242, 0));
        let g = resolve_user("app:wheel", PASSWD, GROUP, &["root".into()]).unwrap();
        assert_eq!((g.gid, g.additional_gids), (10, vec![10, 0]));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(matches!(
            resolve_user("nobody", PASSWD, GROUP, &[]),
            Err(SpecError::NoSuchUser(_))
        ));
        assert!(matches!(
            resolve_user("app:nogroup", PASSWD, GROUP, &[]),
            Err(SpecError::NoSuchGroup(_))
        ));
    }
}
