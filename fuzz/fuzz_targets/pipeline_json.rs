//! JSON bytes through parse → engine::check → answer / $validate / text report.
#![no_main]

use libfuzzer_sys::fuzz_target;
use referral_gateway::parse::Format;

fuzz_target!(|data: &[u8]| {
    referral_gateway_fuzz::pipeline(data, Format::Json);
});
