"""The HTTP API's request and response shapes (validation and the OpenAPI schema at ``/docs``),
and the clear messages its validation errors become."""
from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_QUESTION_CHARS = 1000  # the chat's text box and the API refuse longer questions
MAX_HISTORY_TURNS = 20
MAX_ANSWER_CHARS = 4000
MAX_PASSAGE_CHARS = 20_000


def encodable(text: str) -> str:
    """Text that can be stored and written as UTF-8: JSON's ``"\\ud800"`` (a lone surrogate)
    decodes to a string that cannot."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("holds a lone surrogate (\\ud800-\\udfff): not valid Unicode text") from None
    return text


Text = Annotated[str, AfterValidator(encodable)]


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: Text = Field(max_length=MAX_QUESTION_CHARS)
    answer: Text = Field(max_length=MAX_ANSWER_CHARS, description="the answer text as returned (citations included)")


class AskFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    articles: list[str] = Field(default=[], max_length=100, description="article ids (as in the index manifest)")
    outlet: str = Field(default="", max_length=200)
    since: str = Field(default="", description="yyyy-mm-dd, inclusive")
    until: str = Field(default="", description="yyyy-mm-dd, inclusive")


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"question": "Ai dẫn đầu đoàn đại biểu Hà Nội thăm Cuba?"},
        {"question": "Còn ở Peru thì đoàn gặp ai?",
         "history": [{"question": "Ở Argentina, đoàn Thành ủy Hà Nội đã hội kiến ai?",
                      "answer": "Victor Gorodeki Kot. … [1]"}]},
        {"question": "Hà Nội tặng bao nhiêu tấn gạo?", "filters": {"since": "2022-01-01"}}]})
    question: Text = Field(max_length=MAX_QUESTION_CHARS,
                           description="in Vietnamese (with or without diacritics) or English")
    history: list[Turn] = Field(default=[], max_length=MAX_HISTORY_TURNS,
                                description="earlier turns, oldest first: follow-up questions use them")
    filters: Optional[AskFilters] = None


class CitationOut(BaseModel):
    n: int = Field(description="the number cited as [n] in the answer")
    chunk_id: str
    doc_id: str
    title: str
    url: str
    outlet: str
    date: str
    text: str = Field(description="the cited passage")
    quote: str = Field(description="the sentence of the passage the answer rests on ('' for related passages)")
    score: float
    author: str = Field("", description="the article's byline, when it has one")


class AnswerOut(BaseModel):
    question: str
    standalone: str = Field(description="the question as retrieved (a follow-up made standalone, "
                                        "a greeting ahead of it dropped)")
    answer: str = Field(description="the answer text with [n] citations")
    short: str = Field(description="the direct answer (a name, number, date, place) when there is one")
    abstained: bool = Field(description="true when the articles do not answer: 'answer' says so")
    citations: list[CitationOut]
    related: list[CitationOut] = Field(description="the closest passages, when abstained")
    timings_ms: dict[str, float]
    answerer: Literal["llm", "extractive"] = Field(
        description="who wrote 'answer': the LLM (RAG_LLM), or the extractive answerer (without an LLM, or "
                    "in place of the LLM's answer: see 'reason')")
    reason: str = Field(description=(
        "why the LLM's answer is not shown as written, '' when it is: deadline (not complete within "
        "RAG_LLM_DEADLINE), llm_error (the server failed), echo (it repeated the prompt), llm_not_found "
        "(it said the passages do not answer), no_citation, ungrounded (no sentence supported by the "
        "passage it cites): the extractive answer is shown; partly_grounded: the LLM's answer without "
        "its unsupported sentences"))
    note: str = Field(description="the note the chat shows about 'reason', in Vietnamese ('' for none)")


class RatedCitation(BaseModel):
    """A citation of a rated answer: what the feedback export reads; other fields are ignored."""
    model_config = ConfigDict(extra="ignore")
    n: int = Field(ge=0, le=1000)
    doc_id: Text = Field(max_length=500)
    chunk_id: Text = Field(default="", max_length=500)
    title: Text = Field(default="", max_length=1000)
    text: Text = Field(default="", max_length=MAX_PASSAGE_CHARS)


class RatedAnswer(BaseModel):
    """The answer object as ``/api/ask`` returned it (fields not listed here are ignored)."""
    model_config = ConfigDict(extra="ignore")
    answer: Text = Field(max_length=MAX_ANSWER_CHARS)
    abstained: bool = False
    citations: list[RatedCitation] = Field(default=[], max_length=50)


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: Text = Field(max_length=MAX_QUESTION_CHARS)
    answer: Union[Text, RatedAnswer] = Field(
        description="the answer object as /api/ask returned it, or its text alone")
    rating: Literal[1, -1] = Field(description="1 like, -1 dislike")
    comment: Text = Field(default="", max_length=2000)

    def answer_record(self) -> dict:
        """The answer as the feedback store keeps it (``Answer.as_dict()``'s fields it needs)."""
        if isinstance(self.answer, str):
            return {"answer": self.answer, "abstained": False, "citations": []}
        return self.answer.model_dump()


class FeedbackOut(BaseModel):
    id: int


class TokenOut(BaseModel):
    token: str
    expires: int = Field(description="Unix time")


class HealthOut(BaseModel):
    status: str = Field(description="loading, ready or failed")
    articles: int = 0
    passages: int = 0
    generation: str = ""
    message: str = ""


class ArticleOut(BaseModel):
    status: str = Field(description="added")
    doc_id: str
    file: str = Field(description="where the article is kept in the corpus folder")
    title: str
    date: str = Field(description="yyyy-mm-dd, or empty")
    outlet: str
    author: str
    url: str
    passages: int = Field(description="passages indexed")
    generation: str = Field(description="the index generation now served")


ARTICLE_REQUEST = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary",
                 "description": ".html, .htm, .pdf, .docx, .txt or .md, at most RAG_UPLOAD_MAX_BYTES"}}}},
    "application/json": {"schema": {"type": "object", "required": ["url"], "properties": {
        "url": {"type": "string", "description": "an http(s) news page, fetched as by rag ingest --url"}}}}}}}

class ErrorOut(BaseModel):
    error: str = Field(description="a stable code, e.g. empty_question, rate_limited")
    message: str = Field(description="what went wrong and what to do, in English")


ERRORS = {status: {"model": ErrorOut, "description": text} for status, text in {
    400: "malformed JSON", 401: "API key or token missing, wrong or expired",
    403: "origin not allowed; for POST /api/articles also a wrong admin key, or RAG_ADMIN_KEY unset",
    413: "request body too large", 422: "invalid request (empty or too long question, bad filters; an article "
    "without text, a page that could not be fetched)",
    429: "rate limit reached: see Retry-After", 503: "the index is still loading (Retry-After) or failed; a rating that cannot be stored"}.items()}

ARTICLE_ERRORS = {
    409: {"model": ErrorOut, "description": "duplicate: the same article is in the corpus already"},
    415: {"model": ErrorOut, "description": "unsupported_type (file type) or unsupported_media_type (body)"}}

STREAM_DOC = ("Server-sent events: `sources` ({citations}), `delta` ({text}) as the answer is written, then "
              "`final` (the answer object, authoritative: render it in place of the deltas), or `error`.")


def _shape_name(part) -> bool:
    return isinstance(part, str) and (part in ("RatedAnswer", "str") or part.startswith("function-"))


def explain(errors: list[dict]) -> tuple[int, str, str]:
    """FastAPI's validation errors as ``(status, code, message)`` a person can act on."""
    for error in errors:
        if error["type"] == "json_invalid":
            detail = (error.get("ctx") or {}).get("error", "")
            return 400, "malformed_json", "The body is not valid JSON" + (f" ({detail})." if detail else ".")
    # A field that takes one of two shapes (text or an object) fails once per shape: the deepest
    # error says most; the names pydantic gives the shapes are left out of the path.
    first = max(errors, key=lambda error: len(error["loc"]))
    where = [str(part) for part in first["loc"] if part != "body" and not _shape_name(part)]
    kind = first["type"]
    if where == ["question"]:
        if kind == "missing":
            return 422, "missing_question", 'Send a JSON object with a "question" field.'
        if kind == "string_too_long":
            return 422, "question_too_long", f"The question is longer than {MAX_QUESTION_CHARS} characters."
        if kind == "string_type":
            return 422, "invalid_request", "question: must be a string."
    if not where:
        return 422, "invalid_request", 'Send a JSON object such as {"question": "…"} (Content-Type: application/json).'
    return 422, "invalid_request", f"{'.'.join(where)}: {first['msg']}."
