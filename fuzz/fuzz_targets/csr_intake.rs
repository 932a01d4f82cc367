//! Any bytes through the external CSR intake: it must return, never panic,
//! and an accepted request must be internally consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(csr) = enroll_pki::intake::check_external(data) {
        // What was accepted reads back the same way.
        let again = enroll_pki::intake::check_external(&csr.der_redacted);
        assert!(again.is_ok() || csr.der_redacted != data);
        assert!(enroll_pki::intake::key_of(&csr.spki_der).is_ok());
    }
    let _ = enroll_pki::ParsedCsr::parse(data);
});
