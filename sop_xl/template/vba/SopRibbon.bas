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

Public Sub SopAdoptScenario(control As IRibbonControl)
    RunPython "import sop_xl.macros as m; m.adopt_scenario()"
End Sub

Public Sub SopNewCycle(control As IRibbonControl)
    ' Excel asks for the actuals file: GetOpenFilename works on Windows and on the Mac, where Python
    ' has no dialog of its own inside Excel. The path goes into the named cell ActualsFile (Settings),
    ' which sop_xl.macros.new_cycle reads: it is never pasted into the Python command.
    Dim chosen As Variant
    #If Mac Then
        chosen = Application.GetOpenFilename()
    #Else
        chosen = Application.GetOpenFilename("Actuals (*.csv;*.xlsx),*.csv;*.xlsx", 1, "Actuals of the closing month")
    #End If
    If VarType(chosen) = vbBoolean Then Exit Sub ' Cancel
    ThisWorkbook.Names("ActualsFile").RefersToRange.Value = CStr(chosen)
    RunPython "import sop_xl.macros as m; m.new_cycle()"
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
