//! Wall-clock times as Janus plugins write them: local time through `strftime` (TextRoom's
//! message dates, RecordPlay's `.nfo` dates), and microseconds since the epoch.

use std::ffi::CStr;

/// Now in local time, formatted with a `strftime` format (`c"%FT%T%z"`, say).
pub fn local_time(format: &CStr) -> String {
    // SAFETY: `time`, `localtime_r` and `strftime` only write into the buffers given here, and
    // the format is NUL-terminated.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return String::new();
        }
        let mut buf = [0u8; 128];
        let n = libc::strftime(buf.as_mut_ptr().cast(), buf.len(), format.as_ptr(), &tm);
        String::from_utf8_lossy(buf.get(..n).unwrap_or_default()).into_owned()
    }
}

/// Microseconds since the UNIX epoch.
pub fn unix_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}
