"""Tools another package registers in the ``burr_streaming_chatbot.tools`` entry point group:
one Tool (``shout``), a function returning a list of them (``unit_tools``), and two that are
skipped: a module that does not exist and a tool named like a demo tool."""

from burr_streaming_chatbot.tools import Tool, ToolError


async def _shout(arguments, context):
    return arguments["text"].upper() + "!"


shout = Tool(
    name="shout",
    description="The text in capitals.",
    parameters={
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    },
    run=_shout,
)


async def _km_to_miles(arguments, context):
    if arguments["km"] < 0:
        raise ToolError("A distance is not negative.")
    return {"miles": round(arguments["km"] / 1.609344, 3)}


def unit_tools():
    return [
        Tool(
            name="km_to_miles",
            description="Kilometres in miles.",
            parameters={
                "type": "object",
                "properties": {"km": {"type": "number"}},
                "required": ["km"],
            },
            run=_km_to_miles,
        )
    ]


another_calculator = Tool(
    name="calculator",
    description="A second tool named calculator: refused, the name is taken.",
    parameters={"type": "object"},
    run=_shout,
)
