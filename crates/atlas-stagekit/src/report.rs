//! What a stage contributes to the report (`results/report.html`, `results/figures/*.svg` and the
//! terminal summary of a run).
//!
//! A stage describes its section declaratively ([`Stage::report`](crate::stage::Stage::report)):
//! the result tables it reads, the per-model numbers it adds to the summary table ([`Column`]) and
//! its figures ([`Figure`]), each a query over result tables by *column name*. `atlas-report`
//! renders every section the same way, so a new stage needs no report-side code: it returns its
//! [`Section`] and the page, the standalone figures and the terminal tables follow.
//!
//! Every figure point belongs to an *entry*: a model under a prompt set (`model`, `prompts`
//! columns); entries are coloured by one of the six factors, chosen in the page.

/// A row filter on a result table. Cells are compared in their display form (`1` for an Int64
/// 1, `true` for a Boolean, the text of a Utf8); a filter on a column the table lacks keeps no row.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `column = value`
    Eq(&'static str, &'static str),
    /// `column <> value`
    Ne(&'static str, &'static str),
}

/// How a number is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A fraction shown in percent with one decimal (`0.912` -> `91.2`).
    Percent,
    /// A plain number with this many decimals.
    Fixed(u8),
}

/// A number of a result table: a column, with the columns of its 95% interval when it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    pub column: &'static str,
    /// Axis label / column header.
    pub label: &'static str,
    pub lower: Option<&'static str>,
    pub upper: Option<&'static str>,
    pub format: Format,
}

impl Measure {
    /// A fraction shown in percent, without interval.
    pub fn pct(column: &'static str, label: &'static str) -> Self {
        Self {
            column,
            label,
            lower: None,
            upper: None,
            format: Format::Percent,
        }
    }

    /// A plain number with `decimals` decimals, without interval.
    pub fn num(column: &'static str, label: &'static str, decimals: u8) -> Self {
        Self {
            format: Format::Fixed(decimals),
            ..Self::pct(column, label)
        }
    }

    /// With its interval in `<lower>` / `<upper>` columns.
    pub fn ci(mut self, lower: &'static str, upper: &'static str) -> Self {
        self.lower = Some(lower);
        self.upper = Some(upper);
        self
    }
}

/// What several rows of one entry reduce to in a summary cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduce {
    /// The one row (several rows: the first, in file order).
    First,
    /// The mean of the rows' values (the interval is dropped unless there is one row).
    Mean,
}

/// A column of the per-model summary table (and of the stage's terminal table).
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub table: &'static str,
    pub filter: Vec<Filter>,
    /// One column per distinct value of this column (e.g. one per dataset), headed
    /// `<value>` when `measure.label` is empty, else `<label> <value>`.
    pub split_by: Option<&'static str>,
    pub measure: Measure,
    pub reduce: Reduce,
}

impl Column {
    pub fn new(table: &'static str, measure: Measure) -> Self {
        Self {
            table,
            filter: Vec::new(),
            split_by: None,
            measure,
            reduce: Reduce::First,
        }
    }

    pub fn filter(mut self, f: Filter) -> Self {
        self.filter.push(f);
        self
    }

    pub fn split_by(mut self, column: &'static str) -> Self {
        self.split_by = Some(column);
        self
    }

    pub fn reduce(mut self, r: Reduce) -> Self {
        self.reduce = r;
        self
    }
}

/// Axis transform of a plot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Linear, range from the data.
    Linear,
    /// Linear over [0, 1] (fractions).
    Unit,
    /// `ln(p / (1 - p))`, ticks in percent (effective-robustness plots); range from the data.
    Logit,
}

/// Where an axis' values come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A column of the figure's table.
    Column(Measure),
    /// The entry's zero-shot top-1 on the run's first ID dataset (`zeroshot.parquet`, first row
    /// with `role = id`), joined on `model` and `prompts` (on `model` alone when the figure's
    /// table has no prompt set, as retrieval).
    IdAccuracy,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub source: Source,
    pub scale: Scale,
}

impl Axis {
    pub fn new(source: Source, scale: Scale) -> Self {
        Self { source, scale }
    }
}

/// A straight line, one per panel, from a fit table (`f(y) = slope * f(x) + intercept`, `f` the
/// transform named in the `space` column: `logit`, `probit` or `linear`).
#[derive(Debug, Clone, PartialEq)]
pub struct FitLine {
    pub table: &'static str,
    /// Columns identifying a panel's line (matched against the panel's values), `prompts` among
    /// them: one line per prompt set is drawn in each panel.
    pub key: Vec<&'static str>,
    pub slope: &'static str,
    pub intercept: &'static str,
    /// Standard errors of slope and intercept (the band needs both; a table without them gets
    /// the line alone).
    pub slope_se: &'static str,
    pub intercept_se: &'static str,
    pub space: &'static str,
    /// Points the line was fitted on (count), for the band.
    pub n_points: &'static str,
    /// Boolean column of the figure's table marking the points the line was fitted on.
    pub fitted: &'static str,
    /// Further fitted points (published results) drawn behind the models.
    pub published: Option<Published>,
}

/// Published points of a fit: a table with the fit's key columns, x, y and an `in_fit` flag.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub table: &'static str,
    pub x: &'static str,
    pub y: &'static str,
    pub in_fit: &'static str,
}

/// A reference line of a plot.
#[derive(Debug, Clone, PartialEq)]
pub enum Reference {
    /// At a fixed value of the value axis (error ratio 1).
    Value(f64, &'static str),
    /// At the mean of the non-null values of `column` of `table` over its rows in the panel
    /// (rows whose panel columns match; all rows when the table lacks them): the human shape bias.
    Mean {
        table: &'static str,
        column: &'static str,
        label: &'static str,
    },
}

/// One dot per entry: x against y, a panel per distinct value of `panels` (and per y measure).
#[derive(Debug, Clone, PartialEq)]
pub struct Scatter {
    pub table: &'static str,
    pub filter: Vec<Filter>,
    pub panels: Vec<&'static str>,
    pub x: Axis,
    /// Each y axis gives its own panels (ECE before / after temperature scaling).
    pub y: Vec<Axis>,
    /// The `y = x` line.
    pub diagonal: bool,
    pub fit: Option<FitLine>,
    /// A last panel averaging x and y over the panels per entry (drawn when every entry is in
    /// every panel), titled so; with a fit, its line is the mean of the panels' lines.
    pub mean_panel: Option<&'static str>,
    /// Horizontal reference line.
    pub reference: Option<Reference>,
}

/// One dot per entry and category (a row per category), a panel per distinct value of `panels`.
#[derive(Debug, Clone, PartialEq)]
pub struct Strip {
    pub table: &'static str,
    pub filter: Vec<Filter>,
    pub panels: Vec<&'static str>,
    pub category: &'static str,
    pub value: Measure,
    pub scale: Scale,
    pub reference: Option<Reference>,
}

/// One line per entry through its rows ordered by `order` (reliability diagrams); rows whose
/// `weight` is 0 are skipped. Both axes span [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct Lines {
    pub table: &'static str,
    pub filter: Vec<Filter>,
    pub panels: Vec<&'static str>,
    pub x: Measure,
    pub y: Measure,
    pub order: &'static str,
    pub weight: Option<&'static str>,
    pub diagonal: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Plot {
    Scatter(Box<Scatter>),
    Strip(Strip),
    Lines(Lines),
}

impl Plot {
    /// The table the plot's rows come from.
    pub fn table(&self) -> &'static str {
        match self {
            Plot::Scatter(s) => s.table,
            Plot::Strip(s) => s.table,
            Plot::Lines(l) => l.table,
        }
    }
}

/// A figure: `results/figures/<id>.svg` and a block of the page.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// File name stem and page anchor (unique over the report).
    pub id: &'static str,
    pub title: &'static str,
    /// What is plotted, in words (shown under the figure).
    pub caption: &'static str,
    pub plot: Plot,
}

/// A stage's part of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Page anchor (unique over the report).
    pub id: &'static str,
    pub title: &'static str,
    /// One paragraph on what the section shows.
    pub about: &'static str,
    /// Result tables (`results/<name>.parquet`) the section reads; when the first is missing the
    /// section says "not configured".
    pub tables: Vec<&'static str>,
    pub columns: Vec<Column>,
    pub figures: Vec<Figure>,
}
