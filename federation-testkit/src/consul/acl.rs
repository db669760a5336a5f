//! ACL token resolution and permissions.
//!
//! Consul's ACL failures are easy to misread: an unknown token is a loud 403 `ACL not found`,
//! but a valid token without `service:read` gets a *silent* 200 `[]`, and the
//! `X-Consul-Results-Filtered-By-Acls` header is only sent to authenticated callers. An SDK
//! must tell "no instances" from "not allowed to see them"; this module reproduces exactly
//! that. The token is taken, in Consul's order, from `?token=`, `X-Consul-Token`, then
//! `Authorization: Bearer <token>`; an empty value counts as absent.

use super::error::ConsulDoubleError;
use super::http::{Rejection, Req, reject};
use super::options::ConsulOptions;

/// Accessor id Consul reports for the anonymous token.
const ANONYMOUS_ACCESSOR: &str = "00000000-0000-0000-0000-000000000002";

/// Who is calling and what they may do.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// A non-anonymous token was presented.
    pub(crate) token_given: bool,
    /// `service:read` + `node:read`.
    pub(crate) read: bool,
    /// `service:write`.
    pub(crate) write: bool,
    accessor: String,
}

impl Caller {
    /// The 403 for a write this caller may not make on `service`.
    pub(crate) fn write_denied(&self, service: &str) -> ConsulDoubleError {
        self.denied("service:write", service)
    }

    /// The 403 for a read of one named service this caller may not make.
    pub(crate) fn read_denied(&self, service: &str) -> ConsulDoubleError {
        self.denied("service:read", service)
    }

    fn denied(&self, permission: &str, service: &str) -> ConsulDoubleError {
        ConsulDoubleError::Denied(format!(
            "Permission denied: token with AccessorID '{}' lacks permission '{permission}' on \"{service}\"",
            self.accessor
        ))
    }
}

/// The secret presented by the request, if any.
pub(crate) fn presented_token(req: &Req) -> Option<String> {
    if let Some(token) = req.param("token").filter(|token| !token.is_empty()) {
        return Some(token.to_owned());
    }
    if let Some(token) = req
        .header("x-consul-token")
        .filter(|token| !token.is_empty())
    {
        return Some(token.to_owned());
    }
    let authorization = req.header("authorization")?;
    let (scheme, rest) = authorization.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    rest.split_whitespace().next().map(str::to_owned)
}

/// `X-Consul-Default-Acl-Policy` value.
pub(crate) fn default_policy(opts: &ConsulOptions) -> &'static str {
    match &opts.acl {
        Some(acl) if acl.default_deny => "deny",
        _ => "allow",
    }
}

/// Resolves the caller; an unknown token is answered with 403 `ACL not found`.
pub(crate) fn resolve(opts: &ConsulOptions, req: &Req) -> Result<Caller, Rejection> {
    let Some(acl) = &opts.acl else {
        return Ok(Caller {
            token_given: false,
            read: true,
            write: true,
            accessor: ANONYMOUS_ACCESSOR.to_owned(),
        });
    };
    let Some(secret) = presented_token(req) else {
        let allowed = !acl.default_deny;
        return Ok(Caller {
            token_given: false,
            read: allowed,
            write: allowed,
            accessor: ANONYMOUS_ACCESSOR.to_owned(),
        });
    };
    let Some((position, token)) = acl
        .tokens
        .iter()
        .enumerate()
        .find(|(_, token)| token.secret == secret)
    else {
        return Err(reject(403, "ACL not found"));
    };
    Ok(Caller {
        token_given: true,
        read: token.read || token.write,
        write: token.write,
        accessor: format!("00000000-0000-4000-8000-{:012x}", position + 1),
    })
}
