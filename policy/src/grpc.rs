//! A refused gRPC call, answered the way gRPC clients read a refusal.
//!
//! A gRPC client does not show an HTTP 403 or its body: it reads the
//! `grpc-status` and `grpc-message` trailers of a (trailers-only) response.
//! Envoy would turn a plain 403 into `grpc-status: 7` by itself, but its
//! `grpc-message` would then be the JSON body, which `etcdctl` and every other
//! client print verbatim. So when the request is gRPC the engine gives a reply
//! of its own: status 7 (`PERMISSION_DENIED`) and a sentence naming the reason
//! and the rule, percent-encoded as the gRPC spec requires
//! (<https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md>, "Status-Message").
//!
//! "Is this gRPC?" is answered as Envoy answers it (`Grpc::Common::hasGrpcContentType`):
//! the content type is exactly `application/grpc` or starts with
//! `application/grpc+`. Envoy decides from the same rule whether a local
//! reply is sent as gRPC trailers, so the two never disagree about a request.

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

use crate::Decision;

/// `PERMISSION_DENIED`, the status of every refusal the filter sends a gRPC client.
pub const PERMISSION_DENIED: u32 = 7;

/// The status of a call refused by a rate limit.
pub const RESOURCE_EXHAUSTED: u32 = 8;

/// The trailer that carries the readable message.
pub const MESSAGE_HEADER: &str = "grpc-message";

/// What the gRPC spec leaves unencoded in `grpc-message` is the printable
/// ASCII range 0x20-0x7E except `%`: `CONTROLS` is 0x00-0x1F and 0x7F, and
/// every non-ASCII byte is always encoded.
const MESSAGE_ENCODE: &AsciiSet = &CONTROLS.add(b'%');

const GRPC: &[u8] = b"application/grpc";

/// Does this `content-type` value make the request gRPC? Envoy's rule: exactly
/// `application/grpc`, or `application/grpc+<codec>` (`application/grpc-web`
/// is not gRPC; it is answered as HTTP).
pub fn is_grpc_content_type(value: &[u8]) -> bool {
    value.strip_prefix(GRPC).is_some_and(|rest| rest.is_empty() || rest.starts_with(b"+"))
}

/// The readable message: `forbidden: <reason> (rule <name>)`, or just
/// `forbidden` when the policy's `deny_response.details` is off, for the same
/// reason the HTTP body then says no more than `{"error":"forbidden"}`.
pub fn message(details: bool, decision: &Decision<'_>) -> String {
    if !details {
        return "forbidden".to_owned();
    }
    match decision.rule {
        Some(rule) => format!("forbidden: {} (rule {rule})", decision.reason.as_str()),
        None => format!("forbidden: {}", decision.reason.as_str()),
    }
}

/// `message` as it goes into the `grpc-message` trailer.
pub fn encode_message(message: &str) -> String {
    utf8_percent_encode(message, MESSAGE_ENCODE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Action, Reason, Verdict};

    #[test]
    fn grpc_is_what_envoy_calls_grpc() {
        for yes in ["application/grpc", "application/grpc+proto", "application/grpc+json"] {
            assert!(is_grpc_content_type(yes.as_bytes()), "{yes}");
        }
        for no in ["application/grpc-web", "application/grpc-web+proto", "application/grpcx", "application/json", "", "Application/grpc"] {
            assert!(!is_grpc_content_type(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn the_message_names_reason_and_rule_unless_details_are_off() {
        let by_rule = Decision {
            verdict: Verdict::Deny,
            enforced: Verdict::Deny,
            rule: Some("nobody-maintenance"),
            reason: Reason::Rule(Action::Deny),
        };
        assert_eq!(message(true, &by_rule), "forbidden: matched a deny rule (rule nobody-maintenance)");
        let by_default = Decision { verdict: Verdict::Deny, enforced: Verdict::Deny, rule: None, reason: Reason::Default(Action::Deny) };
        assert_eq!(message(true, &by_default), "forbidden: no rule matched; default_action is deny");
        assert_eq!(message(false, &by_rule), "forbidden");
    }

    #[test]
    fn the_trailer_is_percent_encoded_as_the_grpc_spec_says() {
        assert_eq!(encode_message("forbidden: a; b (rule r-1)"), "forbidden: a; b (rule r-1)", "printable ASCII stays");
        assert_eq!(encode_message("100% sure"), "100%25 sure");
        assert_eq!(encode_message("a\r\nb\x7f"), "a%0D%0Ab%7F");
        assert_eq!(encode_message("caf\u{e9}"), "caf%C3%A9", "UTF-8 bytes, each encoded");
    }
}
