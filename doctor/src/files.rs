//! Check 1: every file parses. PEM (any number of blocks, CRLF or LF) or DER.
//!
//! TLS stacks say "no certificate" or "PEM routines: bad base64 decode" and
//! leave you to guess which of the files it was. Here every problem names the
//! file, the block number, the line the block starts on and what the block
//! claims to be, and the good blocks are still used by the later checks, so
//! one broken CA in a bundle does not hide everything else.
//!
//! That is why the PEM framing (blocks, their labels and lines) is read here:
//! x509-parser's `pem` reader, which the engine uses for the one certificate
//! Envoy hands it, ends a block at any `-----END` line and reports only that a
//! block is broken, not where. The base64 inside a block is decoded by
//! data-encoding, the decoder that reader uses.

use std::path::{Path, PathBuf};

use x509_parser::certificate::X509Certificate;
use x509_parser::revocation_list::CertificateRevocationList;

use super::key::{self, KeyFormat};
use super::{Check, Status};

/// What a file was given as; decides which blocks it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Cert,
    Key,
    Ca,
    Chain,
    Crl,
    ServerCa,
}

impl Role {
    /// The command-line flag, for messages.
    pub fn flag(self) -> &'static str {
        match self {
            Role::Cert => "--cert",
            Role::Key => "--key",
            Role::Ca => "--ca",
            Role::Chain => "--chain",
            Role::Crl => "--crl",
            Role::ServerCa => "--server-ca",
        }
    }

    fn holds_certificates(self) -> bool {
        matches!(self, Role::Cert | Role::Ca | Role::Chain | Role::ServerCa)
    }
}

/// A file's bytes, read before any check runs (unreadable files are exit 2).
#[derive(Debug, Clone)]
pub struct RawFile {
    pub role: Role,
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// A certificate that parsed, and where it came from ("ca.pem block 2").
#[derive(Debug, Clone)]
pub struct Cert {
    pub der: Vec<u8>,
    pub origin: String,
}

impl Cert {
    /// Parse again (cheap: x509-parser borrows). Only certificates that parsed
    /// once are ever stored, so `None` is not expected in practice.
    pub fn parse(&self) -> Option<X509Certificate<'_>> {
        x509_parser::parse_x509_certificate(&self.der).ok().map(|(_, c)| c)
    }
}

/// A private key block that is structurally one of the formats we read.
#[derive(Debug, Clone)]
pub struct Key {
    pub der: Vec<u8>,
    pub format: KeyFormat,
    pub origin: String,
}

/// A CRL that parsed.
#[derive(Debug, Clone)]
pub struct Crl {
    pub der: Vec<u8>,
    pub origin: String,
}

impl Crl {
    pub fn parse(&self) -> Option<CertificateRevocationList<'_>> {
        x509_parser::parse_x509_crl(&self.der).ok().map(|(_, c)| c)
    }
}

/// Everything that parsed, by role.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The first certificate of `--cert`: the client's own.
    pub leaf: Option<Cert>,
    /// Certificates after the leaf in `--cert`: the chain the client sends.
    pub cert_extras: Vec<Cert>,
    pub key: Option<Key>,
    pub cas: Vec<Cert>,
    pub chain: Vec<Cert>,
    pub crls: Vec<Crl>,
    pub server_cas: Vec<Cert>,
}

/// One PEM block as found in the text.
struct PemBlock {
    /// 1-based, counting every block in the file.
    index: usize,
    /// 1-based line of the BEGIN line.
    line: usize,
    label: String,
    /// RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`): an OpenSSL-encrypted legacy key.
    has_headers: bool,
    body: Result<Vec<u8>, String>,
}

impl PemBlock {
    fn name(&self, file: &str) -> String {
        format!("{file} block {} (line {}, {})", self.index, self.line, self.label)
    }
}

/// Parse every file; the check passes when every block of every file was
/// usable and each file held what its role needs.
pub fn load(files: &[RawFile]) -> (Loaded, Check) {
    let mut loaded = Loaded::default();
    let mut problems: Vec<String> = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    for file in files {
        let name = display_name(&file.path);
        let before = problems.len();
        let summary = load_one(file, &name, &mut loaded, &mut problems);
        let marker = if problems.len() > before { "problem" } else { "ok" };
        lines.push(format!("{} {name}: {summary} [{marker}]", file.role.flag()));
    }
    let check = if let Some(first) = problems.first() {
        let mut detail = problems.clone();
        detail.extend(lines);
        Check::new("files", Status::Fail, first.clone()).cause("unparsable_file").detail(detail).fix(
            "Repair or replace the named block: each must be a complete '-----BEGIN X-----' ... \
                 '-----END X-----' with valid base64. `openssl x509 -in FILE -noout -text` (certificates), \
                 `openssl pkey -in FILE -noout` (keys) and `openssl crl -in FILE -noout -text` (CRLs) show what is inside.",
        )
    } else {
        let n = files.len();
        Check::new("files", Status::Pass, format!("{n} file{} parsed, every block usable", plural(n))).detail(lines)
    };
    (loaded, check)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn display_name(path: &Path) -> String {
    path.display().to_string()
}

/// Parse one file into `loaded`; push problems; return a one-phrase summary.
fn load_one(file: &RawFile, name: &str, loaded: &mut Loaded, problems: &mut Vec<String>) -> String {
    if file.bytes.iter().all(u8::is_ascii_whitespace) {
        problems.push(format!("{name} ({}) is empty", file.role.flag()));
        return "empty".into();
    }
    if !contains(&file.bytes, b"-----BEGIN ") {
        return load_der(file, name, loaded, problems);
    }
    let mut certs = 0usize;
    let mut keys = 0usize;
    let mut crls = 0usize;
    let mut ignored: Vec<String> = Vec::new();
    for block in pem_blocks(&file.bytes) {
        let at = block.name(name);
        let der = match &block.body {
            Ok(der) => der.clone(),
            Err(why) => {
                problems.push(format!("{at}: {why}"));
                continue;
            }
        };
        match (block.label.as_str(), file.role) {
            ("CERTIFICATE", role) if role.holds_certificates() => match parse_cert(&der) {
                Ok(()) => {
                    certs += 1;
                    push_cert(loaded, file.role, Cert { der, origin: format!("{name} block {}", block.index) });
                }
                Err(why) => problems.push(format!("{at}: not an X.509 certificate: {why}")),
            },
            ("TRUSTED CERTIFICATE", role) if role.holds_certificates() => problems.push(format!(
                "{at}: OpenSSL 'TRUSTED CERTIFICATE' format, which Envoy and most TLS stacks do not read; \
                 convert with `openssl x509 -in {name} -out plain.pem`"
            )),
            ("X509 CRL", Role::Crl) => match x509_parser::parse_x509_crl(&der) {
                Ok(([], _)) => {
                    crls += 1;
                    loaded.crls.push(Crl { der, origin: format!("{name} block {}", block.index) });
                }
                Ok((rest, _)) => problems.push(format!("{at}: {} bytes after the CRL", rest.len())),
                Err(e) => problems.push(format!("{at}: not an X.509 CRL: {e}")),
            },
            (label, Role::Key) if key::is_key_label(label) => {
                keys += 1;
                if keys > 1 {
                    ignored.push(format!("block {} (a second key; the first is used)", block.index));
                    continue;
                }
                match key::classify_pem(label, &der, block.has_headers) {
                    Ok(format) => {
                        loaded.key = Some(Key { der, format, origin: format!("{name} block {}", block.index) });
                    }
                    Err(why) => problems.push(format!("{at}: {why}")),
                }
            }
            ("EC PARAMETERS", Role::Key) => {}
            (label, _) => ignored.push(format!("block {} ({label})", block.index)),
        }
    }
    let mut summary = match file.role {
        Role::Key if keys == 0 => {
            problems.push(format!("{name} (--key): no private key block (PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)"));
            "no private key".to_owned()
        }
        Role::Key => loaded.key.as_ref().map(|k| k.format.describe().to_owned()).unwrap_or_else(|| "unusable key".into()),
        Role::Crl if crls == 0 => {
            problems.push(format!("{name} (--crl): no usable X509 CRL block"));
            "no CRL".into()
        }
        Role::Crl => count(crls, "CRL"),
        _ if certs == 0 => {
            problems.push(format!("{name} ({}): no usable CERTIFICATE block", file.role.flag()));
            "no certificate".into()
        }
        _ => count(certs, "certificate"),
    };
    if !ignored.is_empty() {
        summary.push_str(&format!("; ignored {}", ignored.join(", ")));
    }
    summary
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", plural(n))
}

fn push_cert(loaded: &mut Loaded, role: Role, cert: Cert) {
    match role {
        Role::Cert if loaded.leaf.is_none() => loaded.leaf = Some(cert),
        Role::Cert => loaded.cert_extras.push(cert),
        Role::Ca => loaded.cas.push(cert),
        Role::Chain => loaded.chain.push(cert),
        Role::ServerCa => loaded.server_cas.push(cert),
        Role::Key | Role::Crl => {}
    }
}

/// A certificate must parse and fill its block exactly.
fn parse_cert(der: &[u8]) -> Result<(), String> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], _)) => Ok(()),
        Ok((rest, _)) => Err(format!("{} bytes after the certificate", rest.len())),
        Err(e) => Err(e.to_string()),
    }
}

/// Binary files: one or more DER certificates back to back, one DER key, or one DER CRL.
fn load_der(file: &RawFile, name: &str, loaded: &mut Loaded, problems: &mut Vec<String>) -> String {
    let bytes = &file.bytes;
    if bytes.first() != Some(&0x30) {
        problems.push(format!(
            "{name} ({}): neither PEM (no '-----BEGIN' line) nor DER (does not start with an ASN.1 SEQUENCE)",
            file.role.flag()
        ));
        return "not PEM or DER".into();
    }
    match file.role {
        Role::Key => match key::classify_der(bytes) {
            Some(format) => {
                loaded.key = Some(Key { der: bytes.clone(), format, origin: format!("{name} (DER)") });
                format.describe().to_owned()
            }
            None => {
                problems.push(format!("{name} (--key, DER): not a PKCS#8, PKCS#1 or SEC1 private key"));
                "unusable key".into()
            }
        },
        Role::Crl => match x509_parser::parse_x509_crl(bytes) {
            Ok(([], _)) => {
                loaded.crls.push(Crl { der: bytes.clone(), origin: format!("{name} (DER)") });
                "1 CRL (DER)".into()
            }
            Ok((rest, _)) => {
                problems.push(format!("{name} (--crl, DER): {} bytes after the CRL", rest.len()));
                "unusable CRL".into()
            }
            Err(e) => {
                problems.push(format!("{name} (--crl, DER): not an X.509 CRL: {e}"));
                "unusable CRL".into()
            }
        },
        role => {
            let mut rest: &[u8] = bytes;
            let mut n = 0usize;
            while !rest.is_empty() {
                n += 1;
                match x509_parser::parse_x509_certificate(rest) {
                    Ok((next, _)) => {
                        let used = rest.len() - next.len();
                        let der = rest.get(..used).unwrap_or_default().to_vec();
                        push_cert(loaded, role, Cert { der, origin: format!("{name} DER certificate {n}") });
                        rest = next;
                    }
                    Err(e) => {
                        let at = bytes.len() - rest.len();
                        problems.push(format!("{name} DER certificate {n} (byte offset {at}): not an X.509 certificate: {e}"));
                        return count(n - 1, "certificate");
                    }
                }
            }
            format!("{} (DER)", count(n, "certificate"))
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every `-----BEGIN X-----` ... `-----END X-----` block, in order.
fn pem_blocks(bytes: &[u8]) -> Vec<PemBlock> {
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').map(trim_end).collect();
    let mut blocks = Vec::new();
    let mut i = 0usize;
    while i < lines.len() {
        let line = lines.get(i).copied().unwrap_or_default();
        let Some(label) = begin_label(line) else {
            i += 1;
            continue;
        };
        let start = i;
        let mut body_lines: Vec<(usize, &[u8])> = Vec::new();
        let mut end: Option<Result<(), String>> = None;
        i += 1;
        while i < lines.len() {
            let l = lines.get(i).copied().unwrap_or_default();
            if let Some(end_label) = end_label(l) {
                end = Some(if end_label == label {
                    Ok(())
                } else {
                    Err(format!("ends with '-----END {end_label}-----' on line {}, not '-----END {label}-----'", i + 1))
                });
                i += 1;
                break;
            }
            if begin_label(l).is_some() {
                break; // the next block starts: this one was never closed
            }
            body_lines.push((i + 1, l));
            i += 1;
        }
        let has_headers = body_lines.iter().any(|(_, l)| l.contains(&b':'));
        let body = match end {
            None => Err(format!("no '-----END {label}-----' line: the block is cut off")),
            Some(Err(e)) => Err(e),
            Some(Ok(())) if has_headers => Ok(Vec::new()),
            Some(Ok(())) => decode_base64(&body_lines),
        };
        blocks.push(PemBlock { index: blocks.len() + 1, line: start + 1, label, has_headers, body });
    }
    blocks
}

fn trim_end(line: &[u8]) -> &[u8] {
    let mut l = line;
    while let [rest @ .., last] = l {
        if last.is_ascii_whitespace() {
            l = rest;
        } else {
            break;
        }
    }
    l
}

fn begin_label(line: &[u8]) -> Option<String> {
    let line = trim_start(line);
    let inner = line.strip_prefix(b"-----BEGIN ")?.strip_suffix(b"-----")?;
    std::str::from_utf8(inner).ok().map(str::to_owned)
}

fn end_label(line: &[u8]) -> Option<String> {
    let line = trim_start(line);
    let inner = line.strip_prefix(b"-----END ")?;
    let inner = inner.strip_suffix(b"-----").unwrap_or(inner);
    Some(String::from_utf8_lossy(inner).into_owned())
}

fn trim_start(line: &[u8]) -> &[u8] {
    let skip = line.iter().take_while(|b| b.is_ascii_whitespace()).count();
    line.get(skip..).unwrap_or_default()
}

/// Strict base64 (standard alphabet, `=` padding only at the end); blanks ignored.
///
/// data-encoding (the decoder x509-parser's `pem` module uses) does the
/// decoding. This scan in front of it only finds where a broken block
/// breaks, so the message can name the character and its line.
fn decode_base64(lines: &[(usize, &[u8])]) -> Result<Vec<u8>, String> {
    let mut symbols = Vec::new();
    let mut padding = 0usize;
    for &(line_no, line) in lines {
        for &c in line {
            match c {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' if padding > 0 => {
                    return Err(format!("invalid base64: data after '=' padding on line {line_no}"));
                }
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' => symbols.push(c),
                b'=' => padding += 1,
                b' ' | b'\t' | b'\r' => {}
                _ => {
                    let shown = if c.is_ascii_graphic() { format!("'{}'", char::from(c)) } else { format!("byte 0x{c:02x}") };
                    return Err(format!("invalid base64: {shown} on line {line_no}"));
                }
            }
        }
    }
    // One symbol carries six bits: not a byte.
    if symbols.len() < 2 {
        return Err("the block is empty".into());
    }
    let truncated = || "invalid base64: the block is truncated".to_owned();
    if padding > 2 {
        return Err(truncated());
    }
    // Padding is optional and the unused low bits of the last symbol are not
    // checked: a block is refused only for what the scan above names.
    let mut spec = data_encoding::BASE64_NOPAD.specification();
    spec.check_trailing_bits = false;
    let base64 = spec.encoding().map_err(|e| format!("base64 decoder: {e}"))?;
    base64.decode(&symbols).map_err(|_| truncated())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_and_rejects() {
        assert_eq!(decode_base64(&[(1, b"aGVsbG8gd29ybGQ=")]).unwrap(), b"hello world");
        assert_eq!(decode_base64(&[(1, b"aGVs"), (2, b"bG8=")]).unwrap(), b"hello");
        assert!(decode_base64(&[(7, b"aGV!")]).unwrap_err().contains("line 7"));
        assert!(decode_base64(&[(1, b"aG=Vs")]).is_err());
        assert!(decode_base64(&[]).is_err());
    }

    #[test]
    fn blocks_are_numbered_and_unclosed_ones_reported() {
        let text = b"junk\n-----BEGIN A-----\naGk=\n-----END A-----\n-----BEGIN B-----\naGk=\n-----BEGIN C-----\naGk=\n-----END D-----\n";
        let blocks = pem_blocks(text);
        assert_eq!(blocks.len(), 3);
        assert_eq!((blocks[0].index, blocks[0].line, blocks[0].label.as_str()), (1, 2, "A"));
        assert_eq!(blocks[0].body.as_deref().unwrap(), b"hi");
        assert!(blocks[1].body.as_ref().unwrap_err().contains("cut off"));
        assert!(blocks[2].body.as_ref().unwrap_err().contains("-----END D-----"));
    }

    #[test]
    fn crlf_is_fine() {
        let blocks = pem_blocks(b"-----BEGIN A-----\r\naGk=\r\n-----END A-----\r\n");
        assert_eq!(blocks[0].body.as_deref().unwrap(), b"hi");
    }
}
