//! The machine API as skerryd serves it: `skerry.machine.v1.MachineService` over the
//! edge in `skerry-api` (mutual TLS, the role gate). Each method translates the request
//! into a read of the runtime's state or event log, or into a call on the subsystems'
//! [`skerryd_core::Ops`], and the answer back; the layer holds no state of its own.
