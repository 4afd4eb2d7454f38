"""The quick chat contract: one running conversation per caller, as question/answer pairs."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models import Conversation, Message
from backend.schemas import ConversationCreate, QuickChatExchange
from backend.services import message_tree
from backend.services.chat import ChatTurn, start_turn
from backend.services.conversations import Owner, create_conversation


def _find_quickchat(*, session: Session, owner: Owner) -> Conversation | None:
    statement = select(Conversation).where(Conversation.kind == "quickchat")
    if owner.user is not None:
        statement = statement.where(Conversation.user_id == owner.user.id)
    else:
        statement = statement.where(Conversation.anonymous_owner == owner.anonymous_key)
    return session.scalars(statement.order_by(Conversation.id)).first()


def start_quick_turn(*, session: Session, owner: Owner, content: str) -> ChatTurn:
    conversation = _find_quickchat(session=session, owner=owner) or create_conversation(
        session=session, owner=owner, conversation_in=ConversationCreate(), kind="quickchat"
    )
    turn = start_turn(
        session=session,
        owner=owner,
        conversation=conversation,
        content=content,
        model=None,
    )
    session.commit()
    return turn


def history(*, session: Session, owner: Owner) -> list[QuickChatExchange]:
    """Each question with the answer that followed it (None when it is still unanswered)."""
    conversation = _find_quickchat(session=session, owner=owner)
    if conversation is None:
        return []
    connection = session.connection()
    leaf = message_tree.shown(
        connection=connection,
        conversation_id=conversation.id,
        current_uuid=conversation.current_message_uuid,
    )
    path = message_tree.path_ids(connection=connection, leaf_id=leaf.id) if leaf else []
    statement = (  # the branch shown, as the chat UI shows it
        select(Message.role, Message.content).where(Message.id.in_(path)).order_by(Message.position)
    )
    exchanges: list[QuickChatExchange] = []
    for role, content in session.execute(statement):
        if role == "user":
            exchanges.append(QuickChatExchange(user=content, ai=None))
        elif exchanges and exchanges[-1].ai is None:
            exchanges[-1].ai = content
    return exchanges
