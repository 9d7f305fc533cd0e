//! Dependency validation and start order: every dependency must be defined and the
//! graph must be acyclic; services start in a topological order and stop in its reverse.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::SupervisorError;
use crate::spec::ServiceSpec;

/// Most services one supervisor runs.
pub const MAX_SERVICES: usize = 1024;

/// A validated order: dependencies before dependents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartOrder {
    names: Vec<String>,
}

impl StartOrder {
    /// Validates every spec and their dependencies; refuses duplicates, unknown
    /// dependencies and cycles (naming the cycle).
    pub fn new(specs: &[ServiceSpec]) -> Result<Self, SupervisorError> {
        if specs.len() > MAX_SERVICES {
            return Err(SupervisorError::TooManyServices {
                count: specs.len(),
                limit: MAX_SERVICES,
            });
        }
        let mut by_name: BTreeMap<&str, &ServiceSpec> = BTreeMap::new();
        for spec in specs {
            spec.validate()?;
            if by_name.insert(&spec.name, spec).is_some() {
                return Err(SupervisorError::DuplicateService {
                    service: spec.name.clone(),
                });
            }
        }
        for spec in specs {
            for dep in &spec.depends_on {
                if !by_name.contains_key(dep.as_str()) {
                    return Err(SupervisorError::UnknownDependency {
                        service: spec.name.clone(),
                        dependency: dep.clone(),
                    });
                }
            }
        }
        // Depth-first, in spec order, so the order is stable and follows the file.
        let mut done: BTreeSet<&str> = BTreeSet::new();
        let mut names = Vec::with_capacity(specs.len());
        for spec in specs {
            let mut path = Vec::new();
            visit(&spec.name, &by_name, &mut done, &mut path, &mut names)?;
        }
        Ok(StartOrder { names })
    }

    /// Names in start order.
    pub fn start(&self) -> &[String] {
        &self.names
    }

    /// Names in stop order (reverse of start).
    pub fn stop(&self) -> impl Iterator<Item = &String> {
        self.names.iter().rev()
    }
}

fn visit<'a>(
    name: &'a str,
    by_name: &BTreeMap<&'a str, &'a ServiceSpec>,
    done: &mut BTreeSet<&'a str>,
    path: &mut Vec<&'a str>,
    out: &mut Vec<String>,
) -> Result<(), SupervisorError> {
    if done.contains(name) {
        return Ok(());
    }
    if let Some(at) = path.iter().position(|n| *n == name) {
        let mut cycle: Vec<String> = path[at..].iter().map(|n| n.to_string()).collect();
        cycle.push(name.to_string());
        return Err(SupervisorError::DependencyCycle { cycle });
    }
    path.push(name);
    if let Some(spec) = by_name.get(name) {
        for dep in &spec.depends_on {
            visit(dep, by_name, done, path, out)?;
        }
    }
    path.pop();
    done.insert(name);
    out.push(name.to_string());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(name: &str, deps: &[&str]) -> ServiceSpec {
        let mut spec = ServiceSpec::new(name, ["/bin/true"]);
        spec.depends_on = deps.iter().map(|d| d.to_string()).collect();
        spec
    }

    #[test]
    fn dependencies_come_first_and_stop_is_reversed() {
        let order = StartOrder::new(&[
            svc("app", &["db", "net"]),
            svc("db", &["net"]),
            svc("net", &[]),
        ])
        .unwrap();
        assert_eq!(order.start(), ["net", "db", "app"]);
        assert_eq!(order.stop().collect::<Vec<_>>(), ["app", "db", "net"]);
    }

    #[test]
    fn a_cycle_is_refused_and_named() {
        let err =
            StartOrder::new(&[svc("a", &["b"]), svc("b", &["c"]), svc("c", &["a"])]).unwrap_err();
        match &err {
            SupervisorError::DependencyCycle { cycle } => assert_eq!(cycle, &["a", "b", "c", "a"]),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "services depend on each other in a cycle: a -> b -> c -> a"
        );
    }

    #[test]
    fn an_unknown_dependency_is_refused() {
        let err = StartOrder::new(&[svc("app", &["dbb"]), svc("db", &[])]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "service app depends on dbb, which is not defined"
        );
    }

    #[test]
    fn self_dependency_and_duplicates_are_refused() {
        assert!(matches!(
            StartOrder::new(&[svc("a", &["a"])]),
            Err(SupervisorError::InvalidSpec { .. })
        ));
        assert!(matches!(
            StartOrder::new(&[svc("a", &[]), svc("a", &[])]),
            Err(SupervisorError::DuplicateService { .. })
        ));
    }

    #[test]
    fn a_long_chain_does_not_blow_the_stack_of_tests() {
        let specs: Vec<ServiceSpec> = (0..MAX_SERVICES)
            .map(|i| {
                if i == 0 {
                    svc("s0", &[])
                } else {
                    svc(&format!("s{i}"), &[&format!("s{}", i - 1)])
                }
            })
            .rev()
            .collect();
        let order = StartOrder::new(&specs).unwrap();
        assert_eq!(order.start()[0], "s0");
        assert_eq!(order.start().len(), MAX_SERVICES);
    }
}
