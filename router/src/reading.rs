//! How a session reads SQL text: its sql_mode decides whether a backslash escapes in
//! a string (not under NO_BACKSLASH_ESCAPES) and whether `"x"` is a string or an
//! identifier (ANSI_QUOTES). Every reader of a statement (the lexer, the access
//! checks, the planner's parser, the plan cache) takes one `Reading`, so that
//! shardgate never reads a statement differently from the server that runs it.

use sqlparser::ast::{BinaryOperator, Expr, Statement};
use sqlparser::dialect::{Dialect, MySqlDialect, Precedence};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::Token as TokenKind;

use crate::lexer::{Lexer, Token};

/// How the session reads strings and identifiers (from its sql_mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// False under NO_BACKSLASH_ESCAPES.
    pub backslash_escapes: bool,
    /// True under ANSI_QUOTES: `"x"` is an identifier.
    pub ansi_quotes: bool,
    /// True under PIPES_AS_CONCAT: `a || b` joins strings; otherwise it is OR.
    pub pipes_as_concat: bool,
}

impl Reading {
    pub const DEFAULT: Reading = Reading {
        backslash_escapes: true,
        ansi_quotes: false,
        pipes_as_concat: false,
    };

    pub fn lexer(self, sql: &[u8]) -> Lexer<'_> {
        Lexer::with_modes(sql, self.backslash_escapes, self.ansi_quotes)
    }

    /// The statement's first word, cheaply: most statements are told apart by it
    /// before the rest is lexed.
    pub fn first_word(self, sql: &[u8]) -> Option<&[u8]> {
        match self.lexer(sql).find(|t| !matches!(t, Token::Comment(_)))? {
            Token::Word(w) => Some(w),
            _ => None,
        }
    }

    pub(crate) fn tokens(self, sql: &[u8]) -> Vec<Token<'_>> {
        self.lexer(sql)
            .filter(|t| !matches!(t, Token::Comment(_)))
            .collect()
    }
}

/// MySQL's multi-table `UPDATE t1, t2 SET … WHERE …` (the comma form, which
/// sqlparser does not read): the tables after the first become the statement's
/// `FROM` list, where the join checks already look for the tables an UPDATE joins.
/// Any other UPDATE fails here and is read by sqlparser's own rule.
fn parse_comma_update(parser: &mut Parser) -> Result<Statement, ParserError> {
    let update_token = parser.expect_keyword(Keyword::UPDATE)?;
    // The modifiers change how the server runs it, not which tables it names.
    let _ = parser.parse_keyword(Keyword::LOW_PRIORITY);
    let _ = parser.parse_keyword(Keyword::IGNORE);
    let table = parser.parse_table_and_joins()?;
    parser.expect_token(&TokenKind::Comma)?;
    let others = parser.parse_comma_separated(Parser::parse_table_and_joins)?;
    parser.expect_keyword(Keyword::SET)?;
    let assignments = parser.parse_comma_separated(Parser::parse_assignment)?;
    let selection = match parser.parse_keyword(Keyword::WHERE) {
        true => Some(parser.parse_expr()?),
        false => None,
    };
    let order_by = match parser.parse_keywords(&[Keyword::ORDER, Keyword::BY]) {
        true => parser.parse_comma_separated(Parser::parse_order_by_expr)?,
        false => Vec::new(),
    };
    let limit = match parser.parse_keyword(Keyword::LIMIT) {
        true => Some(parser.parse_expr()?),
        false => None,
    };
    Ok(sqlparser::ast::Update {
        update_token: update_token.into(),
        optimizer_hints: Vec::new(),
        table,
        assignments,
        from: Some(sqlparser::ast::UpdateTableFromKind::BeforeSet(others)),
        selection,
        returning: None,
        output: None,
        or: None,
        order_by,
        limit,
    }
    .into())
}

impl Reading {
    /// The eight readings, each once: an index for per-reading tables (the plan cache).
    pub fn index(self) -> usize {
        usize::from(!self.backslash_escapes)
            | usize::from(self.ansi_quotes) << 1
            | usize::from(self.pipes_as_concat) << 2
    }

    /// sqlparser's MySQL dialect, reading strings and quotes as this session does.
    pub fn dialect(self) -> SessionDialect {
        SessionDialect(self)
    }
}

/// MySQL's dialect with the session's reading of backslashes and double quotes.
/// Everything else is MySqlDialect's, and it passes for MySqlDialect where sqlparser
/// asks which dialect it parses.
#[derive(Debug, Clone, Copy)]
pub struct SessionDialect(Reading);

impl SessionDialect {
    /// `||` comes next and means OR, as MySQL reads it without PIPES_AS_CONCAT.
    fn pipes_are_or(&self, parser: &Parser) -> bool {
        !self.0.pipes_as_concat && parser.peek_token().token == TokenKind::StringConcat
    }
}

impl Dialect for SessionDialect {
    fn dialect(&self) -> std::any::TypeId {
        std::any::TypeId::of::<MySqlDialect>()
    }
    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '`' || (self.0.ansi_quotes && ch == '"')
    }
    fn supports_string_literal_backslash_escape(&self) -> bool {
        self.0.backslash_escapes
    }
    fn is_identifier_start(&self, ch: char) -> bool {
        MySqlDialect {}.is_identifier_start(ch)
    }
    fn is_identifier_part(&self, ch: char) -> bool {
        MySqlDialect {}.is_identifier_part(ch)
    }
    fn identifier_quote_style(&self, identifier: &str) -> Option<char> {
        MySqlDialect {}.identifier_quote_style(identifier)
    }
    fn supports_string_literal_concatenation(&self) -> bool {
        MySqlDialect {}.supports_string_literal_concatenation()
    }
    fn ignores_wildcard_escapes(&self) -> bool {
        MySqlDialect {}.ignores_wildcard_escapes()
    }
    fn supports_numeric_prefix(&self) -> bool {
        MySqlDialect {}.supports_numeric_prefix()
    }
    fn supports_bitwise_shift_operators(&self) -> bool {
        MySqlDialect {}.supports_bitwise_shift_operators()
    }
    fn supports_multiline_comment_hints(&self) -> bool {
        MySqlDialect {}.supports_multiline_comment_hints()
    }
    fn parse_infix(
        &self,
        parser: &mut Parser,
        expr: &Expr,
        precedence: u8,
    ) -> Option<Result<Expr, ParserError>> {
        if self.pipes_are_or(parser) {
            parser.next_token();
            let right = match parser.parse_subexpr(precedence) {
                Ok(e) => e,
                Err(e) => return Some(Err(e)),
            };
            return Some(Ok(Expr::BinaryOp {
                left: Box::new(expr.clone()),
                op: BinaryOperator::Or,
                right: Box::new(right),
            }));
        }
        MySqlDialect {}.parse_infix(parser, expr, precedence)
    }
    fn get_next_precedence(&self, parser: &Parser) -> Option<Result<u8, ParserError>> {
        if self.pipes_are_or(parser) {
            return Some(Ok(self.prec_value(Precedence::Or)));
        }
        MySqlDialect {}.get_next_precedence(parser)
    }
    fn parse_statement(&self, parser: &mut Parser) -> Option<Result<Statement, ParserError>> {
        if parser.peek_keyword(Keyword::UPDATE) {
            if let Ok(Some(update)) = parser.maybe_parse(parse_comma_update) {
                return Some(Ok(update));
            }
        }
        MySqlDialect {}.parse_statement(parser)
    }
    fn require_interval_qualifier(&self) -> bool {
        MySqlDialect {}.require_interval_qualifier()
    }
    fn supports_limit_comma(&self) -> bool {
        MySqlDialect {}.supports_limit_comma()
    }
    fn supports_create_table_select(&self) -> bool {
        MySqlDialect {}.supports_create_table_select()
    }
    fn supports_insert_set(&self) -> bool {
        MySqlDialect {}.supports_insert_set()
    }
    fn supports_user_host_grantee(&self) -> bool {
        MySqlDialect {}.supports_user_host_grantee()
    }
    fn is_table_factor_alias(&self, explicit: bool, kw: &Keyword, parser: &mut Parser) -> bool {
        MySqlDialect {}.is_table_factor_alias(explicit, kw, parser)
    }
    fn supports_table_hints(&self) -> bool {
        MySqlDialect {}.supports_table_hints()
    }
    fn requires_single_line_comment_whitespace(&self) -> bool {
        MySqlDialect {}.requires_single_line_comment_whitespace()
    }
    fn supports_match_against(&self) -> bool {
        MySqlDialect {}.supports_match_against()
    }
    fn supports_select_modifiers(&self) -> bool {
        MySqlDialect {}.supports_select_modifiers()
    }
    fn supports_set_names(&self) -> bool {
        MySqlDialect {}.supports_set_names()
    }
    fn supports_comma_separated_set_assignments(&self) -> bool {
        MySqlDialect {}.supports_comma_separated_set_assignments()
    }
    fn supports_update_order_by(&self) -> bool {
        MySqlDialect {}.supports_update_order_by()
    }
    fn supports_data_type_signed_suffix(&self) -> bool {
        MySqlDialect {}.supports_data_type_signed_suffix()
    }
    fn supports_cross_join_constraint(&self) -> bool {
        MySqlDialect {}.supports_cross_join_constraint()
    }
    fn supports_double_ampersand_operator(&self) -> bool {
        MySqlDialect {}.supports_double_ampersand_operator()
    }
    fn supports_binary_kw_as_cast(&self) -> bool {
        MySqlDialect {}.supports_binary_kw_as_cast()
    }
    fn supports_comment_optimizer_hint(&self) -> bool {
        MySqlDialect {}.supports_comment_optimizer_hint()
    }
    fn supports_constraint_keyword_without_name(&self) -> bool {
        MySqlDialect {}.supports_constraint_keyword_without_name()
    }
    fn supports_key_column_option(&self) -> bool {
        MySqlDialect {}.supports_key_column_option()
    }
    fn supports_group_by_with_modifier(&self) -> bool {
        MySqlDialect {}.supports_group_by_with_modifier()
    }
    fn supports_left_associative_joins_without_parens(&self) -> bool {
        MySqlDialect {}.supports_left_associative_joins_without_parens()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::ast::{SetExpr, Value};

    fn parse(sql: &str, reading: Reading) -> Statement {
        Parser::parse_sql(&reading.dialect(), sql)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn default_reading_parses_as_mysql() {
        for sql in [
            "SELECT a DIV 2, `b` FROM t USE INDEX (i) WHERE x = 'it\\'s' LIMIT 1, 2",
            "LOCK TABLES t READ",
            "SELECT * FROM t WHERE a && b AND c << 1",
        ] {
            let ours = parse(sql, Reading::DEFAULT);
            let theirs = Parser::parse_sql(&MySqlDialect {}, sql).unwrap().remove(0);
            assert_eq!(ours, theirs, "{sql}");
        }
    }

    #[test]
    fn reads_quotes_and_backslashes_by_mode() {
        let ansi = Reading {
            backslash_escapes: true,
            ansi_quotes: true,
            pipes_as_concat: false,
        };
        let Statement::Query(q) = parse("SELECT \"a\" FROM \"t\"", ansi) else {
            panic!()
        };
        let SetExpr::Select(s) = *q.body else {
            panic!()
        };
        assert_eq!(s.from[0].relation.to_string(), "\"t\"");
        assert!(matches!(
            &s.projection[0],
            sqlparser::ast::SelectItem::UnnamedExpr(Expr::Identifier(_))
        ));
        let plain = Reading {
            backslash_escapes: false,
            ansi_quotes: false,
            pipes_as_concat: false,
        };
        let Statement::Query(q) = parse("SELECT 'a\\'", plain) else {
            panic!()
        };
        let SetExpr::Select(s) = *q.body else {
            panic!()
        };
        let sqlparser::ast::SelectItem::UnnamedExpr(Expr::Value(v)) = &s.projection[0] else {
            panic!()
        };
        assert_eq!(v.value, Value::SingleQuotedString("a\\".into()));
    }
}
