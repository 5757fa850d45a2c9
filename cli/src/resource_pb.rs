//! The ECDS resource as binary protobuf (`publish --out DIR/NAME.pb`).
//!
//! Envoy reads a `.pb` resource file as a serialized `DiscoveryResponse`,
//! with no text to parse: at 10,000 rules it reaches the first VM load in
//! ~60 ms where the JSON resource takes ~250 ms (bench/README.md, issue #19),
//! and that wait is most of a large policy's reload. The messages below are
//! the few fields of Envoy's API the resource uses, with Envoy's field
//! numbers (`envoy/service/discovery/v3/discovery.proto`,
//! `envoy/config/core/v3/extension.proto`, `envoy/extensions/wasm/v3/wasm.proto`,
//! `envoy/extensions/filters/http/wasm/v3/wasm.proto`,
//! `envoy/config/core/v3/base.proto`); prost encodes them. The end-to-end
//! suite has Envoy load and reload the result.

use prost::Message;

use crate::publish::{Target, Validated, ROOT_ID, RUNTIME, STRING_VALUE_TYPE, TYPED_EXTENSION_CONFIG_TYPE, VM_ID, WASM_TYPE};

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
pub struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

impl Any {
    fn of(type_url: &str, message: &impl Message) -> Any {
        Any { type_url: type_url.to_string(), value: message.encode_to_vec() }
    }
}

/// `envoy.service.discovery.v3.DiscoveryResponse`: what the file holds.
#[derive(Clone, PartialEq, Message)]
pub struct DiscoveryResponse {
    #[prost(string, tag = "1")]
    pub version_info: String,
    #[prost(message, repeated, tag = "2")]
    pub resources: Vec<Any>,
}

/// `envoy.config.core.v3.TypedExtensionConfig`.
#[derive(Clone, PartialEq, Message)]
pub struct TypedExtensionConfig {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub typed_config: Option<Any>,
}

/// `envoy.extensions.filters.http.wasm.v3.Wasm`.
#[derive(Clone, PartialEq, Message)]
pub struct Wasm {
    #[prost(message, optional, tag = "1")]
    pub config: Option<PluginConfig>,
}

/// `envoy.extensions.wasm.v3.PluginConfig`.
#[derive(Clone, PartialEq, Message)]
pub struct PluginConfig {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub root_id: String,
    #[prost(message, optional, tag = "3")]
    pub vm_config: Option<VmConfig>,
    #[prost(message, optional, tag = "4")]
    pub configuration: Option<Any>,
    /// `envoy.extensions.wasm.v3.FailurePolicy`.
    #[prost(int32, tag = "7")]
    pub failure_policy: i32,
}

/// `FailurePolicy.FAIL_CLOSED`: a failed VM answers 503, never lets a request pass.
pub const FAIL_CLOSED: i32 = 2;

/// `envoy.extensions.wasm.v3.VmConfig`.
#[derive(Clone, PartialEq, Message)]
pub struct VmConfig {
    #[prost(string, tag = "1")]
    pub vm_id: String,
    #[prost(string, tag = "2")]
    pub runtime: String,
    #[prost(message, optional, tag = "3")]
    pub code: Option<AsyncDataSource>,
}

/// `envoy.config.core.v3.AsyncDataSource`, its `local` case.
#[derive(Clone, PartialEq, Message)]
pub struct AsyncDataSource {
    #[prost(message, optional, tag = "1")]
    pub local: Option<DataSource>,
}

/// `envoy.config.core.v3.DataSource`, its `filename` case.
#[derive(Clone, PartialEq, Message)]
pub struct DataSource {
    #[prost(string, tag = "1")]
    pub filename: String,
}

/// `google.protobuf.StringValue`: the policy, verbatim.
#[derive(Clone, PartialEq, Message)]
pub struct StringValue {
    #[prost(string, tag = "1")]
    pub value: String,
}

/// The resource [`crate::publish::render_json`] writes, as Envoy's binary encoding.
pub fn resource(policy: &Validated, target: &Target) -> DiscoveryResponse {
    let config = PluginConfig {
        name: target.name.clone(),
        root_id: ROOT_ID.into(),
        vm_config: Some(VmConfig {
            vm_id: VM_ID.into(),
            runtime: RUNTIME.into(),
            code: Some(AsyncDataSource { local: Some(DataSource { filename: target.wasm.clone() }) }),
        }),
        configuration: Some(Any::of(STRING_VALUE_TYPE, &StringValue { value: policy.text.clone() })),
        failure_policy: FAIL_CLOSED,
    };
    let extension =
        TypedExtensionConfig { name: target.name.clone(), typed_config: Some(Any::of(WASM_TYPE, &Wasm { config: Some(config) })) };
    DiscoveryResponse { version_info: policy.version_info(), resources: vec![Any::of(TYPED_EXTENSION_CONFIG_TYPE, &extension)] }
}

/// [`resource`], encoded.
pub fn render(policy: &Validated, target: &Target) -> Vec<u8> {
    resource(policy, target).encode_to_vec()
}
