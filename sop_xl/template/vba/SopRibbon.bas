' SopRibbon: the callbacks of the "S&OP" ribbon tab (customUI14.xml beside this file).
'
' One Public Sub per button, named as the button's onAction. Each runs one step of the Python
' S&OP engine through xlwings' RunPython (the standalone "xlwings" module in this workbook), with
' a constant command string: no cell, name or user input is ever pasted into Python code.
' The Python side is sop_xl.macros; it must be importable by the interpreter xlwings uses
' (see SopSetup in SopHelpers).
Option Explicit

Public Sub SopForecast(control As IRibbonControl)
    RunPython "import sop_xl.macros as m; m.forecast()"
End Sub

Public Sub SopBalance(control As IRibbonControl)
    RunPython "import sop_xl.macros as m; m.balance()"
End Sub

Public Sub SopCostRollup(control As IRibbonControl)
    RunPython "import sop_xl.macros as m; m.cost_rollup()"
End Sub

Public Sub SopFinancials(control As IRibbonControl)
    RunPython "import sop_xl.macros as m; m.financials()"
End Sub

Public Sub SopRunAll(control As IRibbonControl)
    RunPython "import sop_xl.macros as m; m.run_all()"
End Sub

Public Sub SopScenarios(control As IRibbonControl)
    RunPython "import sop_xl.macros as m; m.scenarios()"
End Sub

Public Sub SopSnapshot(control As IRibbonControl)
    RunPython "import sop_xl.macros as m; m.snapshot()"
End Sub

Public Sub SopPublish(control As IRibbonControl)
    RunPython "import sop_xl.macros as m; m.publish()"
End Sub

Public Sub SopValidate(control As IRibbonControl)
    RunPython "import sop_xl.macros as m; m.validate()"
End Sub

Public Sub SopSetup(control As IRibbonControl)
    SopShowSetup
End Sub
