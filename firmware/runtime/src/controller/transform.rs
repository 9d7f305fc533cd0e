//! [`Transform`]: the controller most controllers are — each input resource maps,
//! through a pure function, to at most one output resource with the same id.
//!
//! It holds a finalizer on every input it derived an output from, so an input that
//! tears down is released only after its output is gone. When the function returns
//! `None`, or the input disappears, the output is destroyed.

use std::fmt;
use std::marker::PhantomData;

use super::context::Teardown;
use super::{Controller, ControllerError, Input, Output, ReconcileContext, Requeue};
use crate::resource::{Phase, Resource, ResourceSpec, Selector};

/// One input type to one output type through `map`.
pub struct Transform<I, O, F> {
    name: String,
    map: F,
    types: PhantomData<fn(I) -> O>,
}

impl<I, O, F> fmt::Debug for Transform<I, O, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transform")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<I, O, F> Transform<I, O, F>
where
    I: ResourceSpec,
    O: ResourceSpec,
    F: Fn(&Resource<I>) -> Option<O> + Send + 'static,
{
    /// A transform named `name`.
    pub fn new(name: impl Into<String>, map: F) -> Self {
        Transform {
            name: name.into(),
            map,
            types: PhantomData,
        }
    }

    /// Brings the output for input `id` in line; `input` is `None` if it is gone.
    fn sync(
        &self,
        ctx: &mut ReconcileContext,
        id: &str,
        input: Option<Resource<I>>,
    ) -> Result<(), ControllerError> {
        let wanted = match &input {
            Some(input) if input.metadata.phase == Phase::Running => (self.map)(input),
            _ => None,
        };
        match wanted {
            Some(spec) => {
                let held = input
                    .as_ref()
                    .is_some_and(|i| i.metadata.finalizers.iter().any(|f| f == ctx.controller()));
                if !held {
                    ctx.add_finalizer::<I>(id)?;
                }
                ctx.apply::<O>(id, spec)?;
            }
            None => {
                if ctx.destroy::<O>(id)? == Teardown::Done && input.is_some() {
                    ctx.remove_finalizer::<I>(id)?;
                }
            }
        }
        Ok(())
    }
}

impl<I, O, F> Controller for Transform<I, O, F>
where
    I: ResourceSpec,
    O: ResourceSpec,
    F: Fn(&Resource<I>) -> Option<O> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn inputs(&self) -> Vec<Input> {
        vec![Input::strong::<I>()]
    }

    fn outputs(&self) -> Vec<Output> {
        vec![Output::exclusive::<O>()]
    }

    async fn reconcile(&mut self, ctx: &mut ReconcileContext) -> Result<Requeue, ControllerError> {
        match ctx.changed::<I>() {
            Some(ids) => {
                for id in ids {
                    let input = ctx.get::<I>(&id)?;
                    self.sync(ctx, &id, input)?;
                }
            }
            None => {
                for input in ctx.list::<I>(&Selector::all())? {
                    let id = input.metadata.id.clone();
                    self.sync(ctx, &id, Some(input))?;
                }
                ctx.cleanup_untouched::<O>()?;
            }
        }
        Ok(Requeue::OnChange)
    }
}
