//! File flags, the file-position offset, and the structs file calls share with the
//! host.

/// File offset meaning "at the file position", which the op advances (appends, pipes).
pub const IOT_OFFSET_CURRENT: u64 = 0xffff_ffff_ffff_ffff;

/// Open flag: open for reading (with `IOT_OPEN_WRITE`: both).
pub const IOT_OPEN_READ: u32 = 1;
/// Open flag: open for writing.
pub const IOT_OPEN_WRITE: u32 = 2;
/// Open flag: create the file if missing (`O_CREAT`), with the given mode.
pub const IOT_OPEN_CREATE: u32 = 4;
/// Open flag: with `IOT_OPEN_CREATE`, fail with `-EEXIST` if it exists (`O_EXCL`).
pub const IOT_OPEN_EXCLUSIVE: u32 = 8;
/// Open flag: truncate to length 0 (`O_TRUNC`).
pub const IOT_OPEN_TRUNCATE: u32 = 16;
/// Open flag: every write appends, whatever its offset (`O_APPEND`).
pub const IOT_OPEN_APPEND: u32 = 32;

/// Sync flag: flush the data and only the metadata needed to read it (`fdatasync`).
pub const IOT_SYNC_DATA_ONLY: u32 = 1;

/// Part of one pool buffer, for `iot_file_readv`/`iot_file_writev`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct iot_buffer_slice {
    /// A buffer the host owns.
    pub buffer_id: u32,
    /// Where the slice starts in the buffer.
    pub offset: u32,
    /// Its length; `offset + len` must fit the buffer.
    pub len: u32,
}

/// What `iot_file_stat`/`iot_path_stat` report. Times are since the Unix epoch.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct iot_file_info {
    /// Length in bytes.
    pub size: u64,
    /// Bytes of storage allocated (`st_blocks * 512`): more than `size` after an
    /// allocate, less for a sparse file.
    pub allocated: u64,
    pub accessed_sec: i64,
    pub modified_sec: i64,
    /// Last status change (metadata or data).
    pub changed_sec: i64,
    pub accessed_nsec: u32,
    pub modified_nsec: u32,
    pub changed_nsec: u32,
    /// File type and permission bits, as `st_mode` (`S_IFREG | 0644`, ...).
    pub mode: u32,
}
