//! How runs are shown: the terminal table, the HTML report, and the cells both share with `compare`.

pub mod cells;
pub mod html;
pub mod text;
