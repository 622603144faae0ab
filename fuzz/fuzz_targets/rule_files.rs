//! Rule, terminology and site files (TOML) through the rule set compiler.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    referral_gateway_fuzz::rule_files(data);
});
