//! Deciding what to do about sources. For now: [`history`], what each source did, bounded
//! (IPv6 grouped per prefix, least active rows dropped past a cap), which `repute scan`
//! summarises into and `repute watch` is to keep.

pub mod history;
