//! Who may call what: the roles a client certificate can carry and the one table that
//! gives every method of the machine API its required role.
//!
//! Roles are ordered: an admin may do everything an operator may, an operator
//! everything a reader may. A method missing from [`METHOD_ROLES`] is refused for
//! everyone (see `gate`), and a test checks the table against the generated service.

use std::fmt;

/// The role a client certificate names in its subject Organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Read-only access; no secrets (`os:reader`).
    Reader,
    /// Operate the machine: reboot, shut down, start and stop services (`os:operator`).
    Operator,
    /// Everything, including configuration, upgrades and secrets (`os:admin`).
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 3] = [Role::Reader, Role::Operator, Role::Admin];

    /// The subject Organization value that names this role.
    pub fn organization(self) -> &'static str {
        match self {
            Role::Reader => "os:reader",
            Role::Operator => "os:operator",
            Role::Admin => "os:admin",
        }
    }

    /// The role an Organization value names, if any.
    pub fn from_organization(value: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.organization() == value)
    }

    /// Whether a client with this role may call a method that requires `required`.
    pub fn allows(self, required: Role) -> bool {
        self >= required
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.organization())
    }
}

/// Every method of `skerry.machine.v1.MachineService` (its gRPC path) and the lowest
/// role that may call it. Keep in step with the comments in `machine.proto`.
pub const METHOD_ROLES: &[(&str, Role)] = &[
    ("/skerry.machine.v1.MachineService/Version", Role::Reader),
    ("/skerry.machine.v1.MachineService/Health", Role::Reader),
    (
        "/skerry.machine.v1.MachineService/ApplyConfiguration",
        Role::Admin,
    ),
    (
        "/skerry.machine.v1.MachineService/ConfirmConfiguration",
        Role::Admin,
    ),
    ("/skerry.machine.v1.MachineService/Upgrade", Role::Admin),
    ("/skerry.machine.v1.MachineService/Rollback", Role::Admin),
    ("/skerry.machine.v1.MachineService/Reboot", Role::Operator),
    ("/skerry.machine.v1.MachineService/Shutdown", Role::Operator),
    (
        "/skerry.machine.v1.MachineService/ServiceList",
        Role::Reader,
    ),
    (
        "/skerry.machine.v1.MachineService/ServiceStart",
        Role::Operator,
    ),
    (
        "/skerry.machine.v1.MachineService/ServiceStop",
        Role::Operator,
    ),
    (
        "/skerry.machine.v1.MachineService/ServiceRestart",
        Role::Operator,
    ),
    ("/skerry.machine.v1.MachineService/Logs", Role::Reader),
    ("/skerry.machine.v1.MachineService/Events", Role::Reader),
    // Sensitive resource types are refused below admin where they are read.
    (
        "/skerry.machine.v1.MachineService/ResourceGet",
        Role::Reader,
    ),
    (
        "/skerry.machine.v1.MachineService/ResourceList",
        Role::Reader,
    ),
    (
        "/skerry.machine.v1.MachineService/ResourceWatch",
        Role::Reader,
    ),
    (
        "/skerry.machine.v1.MachineService/Dependencies",
        Role::Reader,
    ),
];

/// The role a method path requires; `None` for a path the table does not list.
pub fn required_role(path: &str) -> Option<Role> {
    METHOD_ROLES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, role)| *role)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_admin_over_operator_over_reader() {
        assert!(Role::Admin.allows(Role::Operator));
        assert!(Role::Operator.allows(Role::Reader));
        assert!(!Role::Reader.allows(Role::Operator));
        assert!(!Role::Operator.allows(Role::Admin));
    }

    #[test]
    fn organizations_round_trip_and_others_name_no_role() {
        for role in Role::ALL {
            assert_eq!(Role::from_organization(role.organization()), Some(role));
        }
        assert_eq!(Role::from_organization("os:Admin"), None);
        assert_eq!(Role::from_organization("system:masters"), None);
    }

    #[test]
    fn unlisted_paths_require_no_role_and_are_refused_by_the_gate() {
        assert_eq!(
            required_role("/skerry.machine.v1.MachineService/Nope"),
            None
        );
    }
}
