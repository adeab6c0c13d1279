//! Struct layouts on the target this runs on. The io-uring crate ships kernel structs
//! generated for x86_64 (built for i686 with `--cfg=io_uring_skip_arch_check`): their
//! sizes and field offsets must be those of linux/io_uring.h, where every field is a
//! fixed-width type, so they hold on 32-bit targets too. The structs this library
//! shares with the host must keep their x86_64 layout: the Dart side reads them at
//! fixed offsets whatever the architecture.
//!
//! Sizes and offsets below are the kernel UAPI's (include/uapi/linux/io_uring.h,
//! linux/time_types.h, linux/stat.h), the same for `gcc -m32` and `-m64`.

use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::time::Duration;

use io_uring::types::{BufRingEntry, Fd, SubmitArgs, Timespec};
use io_uring::{cqueue, opcode, squeue, IoUring, Parameters, Probe};
use iouring_transport::*;

/// The bytes of `value`, to read its fields at the kernel's offsets.
fn bytes_of<T>(value: &T) -> &[u8] {
    // SAFETY: `value` is initialized and readable for size_of::<T>() bytes; the structs
    // viewed here have no padding (their sizes are the sums of their fields).
    unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }
}

fn at<const N: usize>(bytes: &[u8], offset: usize) -> [u8; N] {
    bytes[offset..offset + N].try_into().unwrap()
}

fn u16_at(bytes: &[u8], offset: usize) -> u16 {
    u16::from_ne_bytes(at(bytes, offset))
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_ne_bytes(at(bytes, offset))
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    u64::from_ne_bytes(at(bytes, offset))
}

/// A value of `T` made of `bytes` laid out as the kernel would write it.
///
/// # Safety
/// `T` must be valid for any bytes (plain integer fields).
unsafe fn from_kernel_bytes<T>(bytes: &[u8]) -> T {
    assert_eq!(bytes.len(), size_of::<T>());
    // SAFETY: the length matches and the caller vouches any bytes are a valid T.
    unsafe { bytes.as_ptr().cast::<T>().read_unaligned() }
}

#[test]
fn sqe_fields_sit_at_the_kernel_offsets() {
    assert_eq!(size_of::<squeue::Entry>(), 64);
    assert_eq!(size_of::<squeue::Entry128>(), 128);

    let buf = 0x1122_3344usize as *mut u8;
    let read = opcode::Read::new(Fd(0x0506_0708), buf, 0x090a_0b0c)
        .offset(0x8877_6655_4433_2211)
        .ioprio(0x0d0e)
        .rw_flags(0x1f2f_3f4f)
        .buf_group(0x5f6f)
        .build()
        .flags(squeue::Flags::BUFFER_SELECT)
        .user_data(0xfedc_ba98_7654_3210)
        .personality(0x7f8f);
    let sqe = bytes_of(&read);
    assert_eq!(sqe[0], opcode::Read::CODE, "opcode @0");
    assert_eq!(sqe[1], squeue::Flags::BUFFER_SELECT.bits(), "flags @1");
    assert_eq!(u16_at(sqe, 2), 0x0d0e, "ioprio @2");
    assert_eq!(u32_at(sqe, 4), 0x0506_0708, "fd @4");
    assert_eq!(u64_at(sqe, 8), 0x8877_6655_4433_2211, "off @8");
    assert_eq!(u64_at(sqe, 16), 0x1122_3344, "addr @16, zero-extended");
    assert_eq!(u32_at(sqe, 24), 0x090a_0b0c, "len @24");
    assert_eq!(u32_at(sqe, 28), 0x1f2f_3f4f, "rw_flags @28");
    assert_eq!(u64_at(sqe, 32), 0xfedc_ba98_7654_3210, "user_data @32");
    assert_eq!(u16_at(sqe, 40), 0x5f6f, "buf_group @40");
    assert_eq!(u16_at(sqe, 42), 0x7f8f, "personality @42");

    // The file position sentinel (-1) must reach the kernel as all 64 bits set.
    let at_position = opcode::Read::new(Fd(3), buf, 1)
        .offset(IOT_OFFSET_CURRENT)
        .build();
    assert_eq!(u64_at(bytes_of(&at_position), 8), u64::MAX, "off -1 @8");

    let splice = opcode::Splice::new(Fd(0x0102), -2, Fd(0x0304), 0x7777_0000_0001, 9).build();
    let sqe = bytes_of(&splice);
    assert_eq!(u32_at(sqe, 4), 0x0304, "fd_out @4");
    assert_eq!(u64_at(sqe, 8), 0x7777_0000_0001, "off_out @8");
    assert_eq!(
        u64_at(sqe, 16),
        u64::MAX - 1,
        "splice_off_in @16, sign-extended"
    );
    assert_eq!(u32_at(sqe, 44), 0x0102, "splice_fd_in @44");

    let cmd: [u8; 16] = std::array::from_fn(|i| i as u8 + 1);
    let uring_cmd = opcode::UringCmd16::new(Fd(1), 0xabcd_ef01).cmd(cmd).build();
    let sqe = bytes_of(&uring_cmd);
    assert_eq!(u32_at(sqe, 8), 0xabcd_ef01, "cmd_op @8");
    assert_eq!(sqe[48..64], cmd, "addr3/cmd @48..64");
}

#[test]
fn cqe_fields_sit_at_the_kernel_offsets() {
    assert_eq!(size_of::<cqueue::Entry>(), 16);
    assert_eq!(size_of::<cqueue::Entry32>(), 32);
    let mut raw = [0u8; 16];
    raw[0..8].copy_from_slice(&0x0123_4567_89ab_cdefu64.to_ne_bytes());
    raw[8..12].copy_from_slice(&(-libc::ENOBUFS).to_ne_bytes());
    raw[12..16].copy_from_slice(&0x0007_0003u32.to_ne_bytes());
    // SAFETY: a CQE is plain integers.
    let cqe: cqueue::Entry = unsafe { from_kernel_bytes(&raw) };
    assert_eq!(cqe.user_data(), 0x0123_4567_89ab_cdef, "user_data @0");
    assert_eq!(cqe.result(), -libc::ENOBUFS, "res @8");
    assert_eq!(cqe.flags(), 0x0007_0003, "flags @12");
    assert_eq!(cqueue::buffer_select(cqe.flags()), Some(7));
}

/// `io_uring_setup(2)` filling a buffer laid out as the kernel's `io_uring_params`
/// (120 bytes: 10 words, then `io_sqring_offsets` @40 and `io_cqring_offsets` @80,
/// 40 bytes each).
fn raw_setup(entries: u32) -> (OwnedFd, [u8; 120]) {
    let mut params = [0u8; 120];
    // SAFETY: `params` is a writable io_uring_params-sized buffer for the call.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, entries, params.as_mut_ptr()) };
    assert!(
        fd >= 0,
        "io_uring_setup: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: the kernel just created this fd for us.
    (unsafe { OwnedFd::from_raw_fd(fd as i32) }, params)
}

#[test]
fn the_crate_maps_a_ring_from_params_the_kernel_wrote() {
    assert_eq!(size_of::<Parameters>(), 120);
    let (fd, raw) = raw_setup(4);
    let (sq_entries, cq_entries, features) = (u32_at(&raw, 0), u32_at(&raw, 4), u32_at(&raw, 20));
    assert_eq!((sq_entries, cq_entries), (4, 8));
    // The sq and cq ring_entries fields hold their offsets in the ring mapping.
    assert_ne!(u32_at(&raw, 40 + 12), 0, "sq_off.ring_entries @52");
    assert_ne!(u32_at(&raw, 80 + 12), 0, "cq_off.ring_entries @92");
    // SAFETY: io_uring_params is plain integers.
    let params: Parameters = unsafe { from_kernel_bytes(&raw) };
    assert_eq!(params.sq_entries(), sq_entries);
    assert_eq!(params.cq_entries(), cq_entries);
    assert_eq!(params.is_feature_nodrop(), features & (1 << 1) != 0);
    assert_eq!(params.is_feature_ext_arg(), features & (1 << 8) != 0);
    assert!(
        params.is_feature_ext_arg(),
        "the library needs IORING_FEAT_EXT_ARG"
    );

    // The crate maps the rings at the offsets it reads from sq_off/cq_off: the ring
    // sizes it finds there, and a round trip, prove it reads them where the kernel
    // wrote them.
    // SAFETY: `fd` is a fresh ring whose setup wrote `params`; the ring owns it now.
    let mut ring: IoUring = unsafe { IoUring::from_fd(fd.into_raw_fd(), params) }.unwrap();
    assert_eq!(ring.submission().capacity(), 4);
    assert_eq!(ring.completion().capacity(), 8);
    let nop = opcode::Nop::new().build().user_data(0x8000_0000_0000_0001);
    let bad = opcode::Read::new(Fd(-1), std::ptr::null_mut(), 0)
        .build()
        .user_data(7);
    // SAFETY: neither entry points at memory.
    unsafe { ring.submission().push_multiple(&[nop, bad]) }.unwrap();
    assert_eq!(ring.submit_and_wait(2).unwrap(), 2);
    let mut done: Vec<_> = ring
        .completion()
        .map(|c| (c.user_data(), c.result()))
        .collect();
    done.sort_unstable();
    assert_eq!(done, [(7, -libc::EBADF), (0x8000_0000_0000_0001, 0)]);
}

#[test]
fn probe_reads_the_kernels_opcode_table() {
    const IORING_REGISTER_PROBE: u32 = 8;
    const IO_URING_OP_SUPPORTED: u16 = 1;
    let ring = IoUring::new(4).unwrap();
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe).unwrap();
    // io_uring_probe: last_op @0, ops_len @1, 16 bytes; then 8-byte io_uring_probe_op
    // entries with flags @2.
    let mut raw = [0u64; 2 + 256];
    // SAFETY: `raw` has room for the header and 256 ops, the count we pass.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring.as_raw_fd(),
            IORING_REGISTER_PROBE,
            raw.as_mut_ptr(),
            256u32,
        )
    };
    assert_eq!(ret, 0, "{}", std::io::Error::last_os_error());
    let bytes = bytes_of(&raw);
    let ops_len = usize::from(bytes[1]);
    assert!(ops_len > usize::from(opcode::Read::CODE));
    let supported =
        |op: usize| op < ops_len && u16_at(bytes, 16 + 8 * op + 2) & IO_URING_OP_SUPPORTED != 0;
    assert!(
        supported(opcode::Read::CODE.into()),
        "read is in every kernel we run on"
    );
    for op in 0..=u8::MAX {
        assert_eq!(probe.is_supported(op), supported(op.into()), "opcode {op}");
    }
}

#[test]
fn buffer_ring_entries_and_tail_sit_at_the_kernel_offsets() {
    // io_uring_buf: addr @0, len @8, bid @12, 16 bytes; io_uring_buf_ring's tail
    // overlays the first entry's last two bytes (@14).
    assert_eq!(size_of::<BufRingEntry>(), 16);
    let mut ring = [0u64; 4];
    let base = ring.as_mut_ptr().cast::<BufRingEntry>();
    // SAFETY: `ring` is 8-aligned and holds two entries; all-zero bytes are an entry.
    let second = unsafe { &mut *base.add(1) };
    second.set_addr(0x0102_0304_0506_0708);
    second.set_len(0x1122_3344);
    second.set_bid(0x5566);
    // SAFETY: `base` is the first entry of an initialized ring.
    let tail = unsafe { BufRingEntry::tail(base) };
    assert_eq!(tail as usize - base as usize, 14, "tail @14");
    let bytes = bytes_of(&ring);
    assert_eq!(u64_at(bytes, 16), 0x0102_0304_0506_0708, "addr @0");
    assert_eq!(u32_at(bytes, 24), 0x1122_3344, "len @8");
    assert_eq!(u16_at(bytes, 28), 0x5566, "bid @12");
    assert_eq!(bytes[..16], [0; 16], "the first entry is untouched");
}

#[test]
fn timespecs_and_wait_arguments_are_the_kernels_64_bit_layouts() {
    // __kernel_timespec is two 64-bit fields on every target, unlike libc::timespec
    // (8 bytes on i686).
    assert_eq!(size_of::<Timespec>(), 16);
    let ts = Timespec::new().sec(0x0102_0304_0506_0708).nsec(999_999_999);
    let bytes = bytes_of(&ts);
    assert_eq!(u64_at(bytes, 0), 0x0102_0304_0506_0708, "tv_sec @0");
    assert_eq!(u64_at(bytes, 8), 999_999_999, "tv_nsec @8, 64 bits");
    let from_duration = Timespec::from(Duration::from_millis(1_500));
    assert_eq!(
        (
            u64_at(bytes_of(&from_duration), 0),
            u64_at(bytes_of(&from_duration), 8)
        ),
        (1, 500_000_000)
    );

    // io_uring_getevents_arg: sigmask @0, sigmask_sz @8, min_wait_usec @12, ts @16.
    assert_eq!(size_of::<SubmitArgs>(), 24);
    let args = SubmitArgs::new().timespec(&ts).min_wait_usec(0x0a0b_0c0d);
    let bytes = bytes_of(&args);
    assert_eq!(u64_at(bytes, 0), 0, "sigmask @0");
    assert_eq!(u32_at(bytes, 8), 0, "sigmask_sz @8");
    assert_eq!(u32_at(bytes, 12), 0x0a0b_0c0d, "min_wait_usec @12");
    assert_eq!(u64_at(bytes, 16), &ts as *const Timespec as u64, "ts @16");
}

#[test]
fn statx_is_the_kernels() {
    // The kernel writes a statx into our buffer for iot_file_stat.
    assert_eq!(size_of::<libc::statx>(), 256);
    assert_eq!(size_of::<libc::statx_timestamp>(), 16);
    assert_eq!(offset_of!(libc::statx_timestamp, tv_nsec), 8);
    assert_eq!(offset_of!(libc::statx, stx_mode), 28);
    assert_eq!(offset_of!(libc::statx, stx_size), 40);
    assert_eq!(offset_of!(libc::statx, stx_blocks), 48);
    assert_eq!(offset_of!(libc::statx, stx_atime), 64);
    assert_eq!(offset_of!(libc::statx, stx_ctime), 96);
    assert_eq!(offset_of!(libc::statx, stx_mtime), 112);
}

#[test]
fn structs_shared_with_the_host_keep_their_x86_64_layout() {
    assert_eq!(size_of::<iot_completion>(), 32);
    assert_eq!(
        size_of::<[iot_completion; 2]>(),
        64,
        "drained arrays stride 32"
    );
    assert_eq!(offset_of!(iot_completion, tag), 0);
    assert_eq!(offset_of!(iot_completion, handle), 8);
    assert_eq!(offset_of!(iot_completion, result), 16);
    assert_eq!(offset_of!(iot_completion, flags), 20);
    assert_eq!(offset_of!(iot_completion, buffer_id), 24);
    assert_eq!(offset_of!(iot_completion, kind), 26);
    assert_eq!(offset_of!(iot_completion, offset), 28);

    assert_eq!(size_of::<iot_config>(), 24);
    assert_eq!(offset_of!(iot_config, ring_entries), 0);
    assert_eq!(offset_of!(iot_config, recv_buffer_count), 4);
    assert_eq!(offset_of!(iot_config, send_buffer_count), 8);
    assert_eq!(offset_of!(iot_config, buffer_size), 12);
    assert_eq!(offset_of!(iot_config, flags), 16);
    assert_eq!(offset_of!(iot_config, socket_buffer_limit), 20);

    assert_eq!(size_of::<iot_stats>(), 32);
    assert_eq!(offset_of!(iot_stats, ops_in_flight), 0);
    assert_eq!(offset_of!(iot_stats, sockets_open), 4);
    assert_eq!(offset_of!(iot_stats, buffers_outstanding), 8);
    assert_eq!(offset_of!(iot_stats, completions_ready), 12);
    assert_eq!(offset_of!(iot_stats, completion_overflows), 16);
    assert_eq!(offset_of!(iot_stats, recv_ring_buffers), 20);
    assert_eq!(offset_of!(iot_stats, pieces_outstanding), 24);
    assert_eq!(offset_of!(iot_stats, packs_receives), 28);

    assert_eq!(size_of::<iot_buffer_slice>(), 12);
    assert_eq!(offset_of!(iot_buffer_slice, buffer_id), 0);
    assert_eq!(offset_of!(iot_buffer_slice, offset), 4);
    assert_eq!(offset_of!(iot_buffer_slice, len), 8);

    assert_eq!(size_of::<iot_file_info>(), 56);
    assert_eq!(offset_of!(iot_file_info, size), 0);
    assert_eq!(offset_of!(iot_file_info, allocated), 8);
    assert_eq!(offset_of!(iot_file_info, accessed_sec), 16);
    assert_eq!(offset_of!(iot_file_info, modified_sec), 24);
    assert_eq!(offset_of!(iot_file_info, changed_sec), 32);
    assert_eq!(offset_of!(iot_file_info, accessed_nsec), 40);
    assert_eq!(offset_of!(iot_file_info, modified_nsec), 44);
    assert_eq!(offset_of!(iot_file_info, changed_nsec), 48);
    assert_eq!(offset_of!(iot_file_info, mode), 52);
}
