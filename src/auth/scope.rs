//! SMART scopes (App Launch 2.0 §scopes; v1 forms accepted): what a route needs and whether a
//! token's scopes grant it. Only `system/` scopes count: the gateway's callers are systems
//! (SMART Backend Services).

/// What a route needs: a resource type and the SMART v2 permissions on it (each of `c r u d s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub resource: &'static str,
    pub permissions: &'static str,
}

impl Need {
    pub const CREATE_ORDERS: Need = Need {
        resource: "ServiceRequest",
        permissions: "c",
    };
    pub const READ_ORDERS: Need = Need {
        resource: "ServiceRequest",
        permissions: "r",
    };
    pub const UPDATE_ORDERS: Need = Need {
        resource: "ServiceRequest",
        permissions: "u",
    };
    pub const READ_CONSULTS: Need = Need {
        resource: "AuditEvent",
        permissions: "rs",
    };

    /// The v2 scope that grants exactly this, for `WWW-Authenticate` and the 403's text.
    pub fn scope(&self) -> String {
        format!("system/{}.{}", self.resource, self.permissions)
    }

    /// Whether these granted scopes, together, give every permission needed.
    pub fn granted_by<S: AsRef<str>>(&self, scopes: &[S]) -> bool {
        self.permissions.chars().all(|p| {
            scopes
                .iter()
                .filter_map(|s| permissions_of(s.as_ref(), self.resource))
                .any(|granted| granted.contains(p))
        })
    }
}

/// The v2 permissions a scope grants on `resource`, if any.
fn permissions_of(scope: &str, resource: &str) -> Option<String> {
    let rest = scope.strip_prefix("system/")?;
    let (ty, perms) = rest.rsplit_once('.')?;
    if ty != resource && ty != "*" {
        return None;
    }
    match perms {
        // SMART v1.
        "read" => Some("rs".into()),
        "write" => Some("cud".into()),
        "*" => Some("cruds".into()),
        // SMART v2: a non-empty subsequence of "cruds", in that order. A scope narrowed by a
        // query (`.rs?category=...`) grants less than the whole type and is not counted.
        _ => v2_permissions(perms).map(str::to_string),
    }
}

fn v2_permissions(perms: &str) -> Option<&str> {
    if perms.is_empty() {
        return None;
    }
    let mut order = "cruds".chars();
    perms
        .chars()
        .all(|c| order.by_ref().any(|o| o == c))
        .then_some(perms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_and_v1_forms() {
        let c = Need::CREATE_ORDERS;
        assert!(c.granted_by(&["system/ServiceRequest.c"]));
        assert!(c.granted_by(&["system/ServiceRequest.cruds"]));
        assert!(c.granted_by(&["system/*.cr"]));
        assert!(c.granted_by(&["system/ServiceRequest.write"]));
        assert!(c.granted_by(&["system/ServiceRequest.*"]));
        assert!(!c.granted_by(&["system/ServiceRequest.r"]));
        assert!(!c.granted_by(&["system/ServiceRequest.read"]));
        assert!(!c.granted_by(&["user/ServiceRequest.c"]));
        assert!(!c.granted_by(&["patient/ServiceRequest.c"]));
        assert!(!c.granted_by(&["system/Observation.c"]));
        assert!(!c.granted_by(&["system/ServiceRequest.rc"]), "out of order");
        assert!(!c.granted_by(&["system/ServiceRequest.c?status=active"]));
        assert!(!c.granted_by::<&str>(&[]));
    }

    #[test]
    fn several_permissions_may_come_from_several_scopes() {
        let rs = Need::READ_CONSULTS;
        assert!(rs.granted_by(&["system/AuditEvent.rs"]));
        assert!(rs.granted_by(&["system/AuditEvent.read"]));
        assert!(rs.granted_by(&["system/AuditEvent.r", "system/AuditEvent.s"]));
        assert!(!rs.granted_by(&["system/AuditEvent.r"]));
        assert_eq!(rs.scope(), "system/AuditEvent.rs");
    }
}
