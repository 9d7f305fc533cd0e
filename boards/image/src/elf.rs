//! Is a program static? Reads an ELF64 file's program headers and looks for `PT_INTERP`
//! (a dynamic loader): the slot holds no libc for skerryd, so it must have none.

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linkage {
    /// No `PT_INTERP`: runs without a loader.
    Static,
    /// Has a `PT_INTERP`: needs a dynamic loader and libraries.
    Dynamic,
}

const PT_INTERP: u32 = 3;
/// More program headers than any real program has.
const MAX_PROGRAM_HEADERS: usize = 256;

/// Reads `bytes` (the file's start; the program headers must be in it) as ELF64
/// little-endian. Errors say what is not right.
pub fn linkage(bytes: &[u8]) -> Result<Linkage, String> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    if bytes[4] != 2 || bytes[5] != 1 {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
    let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().map_err(|_| "short header")?);
    let phentsize = usize::from(u16_at(0x36));
    let phnum = usize::from(u16_at(0x38));
    if phnum > MAX_PROGRAM_HEADERS || phentsize < 56 {
        return Err(format!("{phnum} program headers of {phentsize} bytes"));
    }
    let start = usize::try_from(phoff).map_err(|_| "program headers out of range")?;
    for i in 0..phnum {
        let at = start
            .checked_add(i * phentsize)
            .filter(|&a| a + 4 <= bytes.len())
            .ok_or("program headers past the end of the file")?;
        let kind = u32::from_le_bytes(bytes[at..at + 4].try_into().map_err(|_| "short header")?);
        if kind == PT_INTERP {
            return Ok(Linkage::Dynamic);
        }
    }
    Ok(Linkage::Static)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_shell_is_dynamic_and_garbage_is_refused() {
        let sh = std::fs::read("/bin/sh").unwrap();
        assert_eq!(linkage(&sh), Ok(Linkage::Dynamic));
        assert!(linkage(b"#!/bin/sh\n").is_err());
        let mut truncated = sh[..64].to_vec();
        truncated[0x38] = 200;
        assert!(linkage(&truncated).is_err());
    }
}
