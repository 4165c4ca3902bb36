//! The order in which LDAP servers from `_ldap._tcp` SRV records are tried (DESIGN.md §2): by
//! priority, lowest first; within a priority, by weight, highest first. Deterministic, so a
//! lookup can be explained and tested; a target of "." means the service is not offered.

use crate::dns::SrvRecord;

pub(crate) fn order(records: &[SrvRecord]) -> Vec<SrvRecord> {
    let mut servers: Vec<SrvRecord> =
        records.iter().filter(|r| !r.target.is_empty() && r.target != ".").cloned().collect();
    servers.sort_by(|a, b| a.priority.cmp(&b.priority).then(b.weight.cmp(&a.weight)).then(a.target.cmp(&b.target)));
    servers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srv(priority: u16, weight: u16, target: &str) -> SrvRecord {
        SrvRecord { priority, weight, port: 389, target: target.into() }
    }

    #[test]
    fn priority_first_then_weight_highest_first() {
        let ordered = order(&[srv(20, 100, "d"), srv(10, 5, "b"), srv(10, 50, "a"), srv(0, 0, "."), srv(30, 0, "e")]);
        let names: Vec<&str> = ordered.iter().map(|s| s.target.as_str()).collect();
        assert_eq!(names, ["a", "b", "d", "e"]);
    }
}
