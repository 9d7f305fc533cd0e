//! `configData`: the attributes a target reports, kept (merged or replaced) in the
//! store; its `board` and `channel` attributes move the target.

use std::collections::BTreeMap;

use http::{Response, StatusCode};
use serde_json::Value;
use skerry_fleet_store::{DdiTarget, StoreError, DDI_ATTRIBUTE_LIMIT};
use tonic::body::Body;

use super::{text, valid_name, DdiApi, MAX_ATTRIBUTE_BYTES};

impl DdiApi {
    pub(super) fn config_data(
        &self,
        target: &DdiTarget,
        body: &[u8],
    ) -> Result<Response<Body>, StoreError> {
        let v: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return Ok(text(
                    StatusCode::BAD_REQUEST,
                    format!("configData: not JSON: {e}"),
                ))
            }
        };
        let Some(data) = v.get("data").and_then(Value::as_object) else {
            return Ok(text(StatusCode::BAD_REQUEST, "configData: no data object"));
        };
        if data.len() > DDI_ATTRIBUTE_LIMIT {
            return Ok(text(
                StatusCode::BAD_REQUEST,
                format!("configData: more than {DDI_ATTRIBUTE_LIMIT} attributes"),
            ));
        }
        let mut attrs = if v.get("mode").and_then(Value::as_str) == Some("replace") {
            BTreeMap::new()
        } else {
            self.store
                .ddi_attributes(&target.device)?
                .unwrap_or_default()
        };
        for (k, val) in data {
            let Some(val) = val.as_str() else {
                return Ok(text(
                    StatusCode::BAD_REQUEST,
                    format!("configData: data.{k}: not a string"),
                ));
            };
            if k.is_empty() || k.len() > MAX_ATTRIBUTE_BYTES || val.len() > MAX_ATTRIBUTE_BYTES {
                return Ok(text(
                    StatusCode::BAD_REQUEST,
                    format!("configData: a key or value over {MAX_ATTRIBUTE_BYTES} bytes"),
                ));
            }
            attrs.insert(k.clone(), val.to_string());
        }
        if attrs.len() > DDI_ATTRIBUTE_LIMIT {
            return Ok(text(
                StatusCode::BAD_REQUEST,
                format!("configData: more than {DDI_ATTRIBUTE_LIMIT} attributes"),
            ));
        }
        let mut next = target.clone();
        if let Some(b) = attrs.get("board").filter(|b| valid_name(b)) {
            next.board = b.clone();
        }
        if let Some(c) = attrs.get("channel").filter(|c| valid_name(c)) {
            next.channel = c.clone();
        }
        self.store.set_ddi_attributes(&target.device, &attrs)?;
        if next != *target {
            self.store.update_ddi_target(&next)?;
        }
        Ok(text(StatusCode::OK, ""))
    }
}
