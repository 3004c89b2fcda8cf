' SopHelpers: small helpers for the S&OP workbook that need no Python.
'
' SopShowSetup tells which Python interpreter xlwings will start and lets the user point it at
' another one. xlwings (standalone module "xlwings" in this workbook, no add-in needed) looks for
' the setting in this order: a sheet named "xlwings.conf" in this workbook (key in column A from
' A1 down, value in column B), an xlwings.conf file beside the workbook, the user's
' ~/.xlwings/xlwings.conf, and finally "python" on the PATH. The keys are Interpreter_Win and
' Interpreter_Mac; %VARIABLES% (Windows) or $VARIABLES (macOS) in the value are expanded.
' The interpreter needs the sop-xl package and xlwings of the same version as this workbook
' (XLWINGS_VERSION) installed.
'
' SopSetStatus / SopResetStatusBar let the Python side (xw.Book.caller().macro(...)) show progress
' and always leave Excel usable after a run.
Option Explicit

Private Const SOP_CONF_SHEET As String = "xlwings.conf"

Public Sub SopShowSetup()
    Dim key As String, current As String, shown As String, answer As String
    #If Mac Then
        key = "Interpreter_Mac"
    #Else
        key = "Interpreter_Win"
    #End If
    current = GetConfig(UCase$(key), "")
    If current = "" Then current = GetConfig("INTERPRETER", "")
    If current = "" Then
        shown = "python (the first one on the PATH)"
    Else
        shown = current
    End If

    answer = InputBox("S&OP runs its Python engine through xlwings " & XLWINGS_VERSION & "." & vbLf & vbLf & _
        "Python interpreter used now:" & vbLf & shown & vbLf & vbLf & _
        "That Python needs sop-xl and xlwings " & XLWINGS_VERSION & " installed." & vbLf & _
        "To use another one, enter the full path of its python executable " & _
        "(for example C:\Users\me\sop\.venv\Scripts\python.exe). It is stored as " & key & _
        " in this workbook's '" & SOP_CONF_SHEET & "' sheet.", "S&OP setup", current)
    If answer = "" Or answer = current Then Exit Sub

    #If Not Mac Then
        If InStr(answer, "%") = 0 Then
            If Len(Dir(answer)) = 0 Then
                MsgBox "No file found at:" & vbLf & answer & vbLf & vbLf & "Nothing was changed.", _
                    vbExclamation, "S&OP setup"
                Exit Sub
            End If
        End If
    #End If

    If SopSetConfig(key, answer) Then
        MsgBox key & " is now:" & vbLf & answer & vbLf & vbLf & _
            "Save the workbook to keep the setting.", vbInformation, "S&OP setup"
    End If
End Sub

Private Function SopSetConfig(ByVal key As String, ByVal value As String) As Boolean
    ' Writes key/value into the xlwings.conf sheet, which xlwings reads from A1 down.
    Dim sht As Worksheet, previous As Object, r As Long
    On Error GoTo failed
    Set previous = ActiveSheet
    On Error Resume Next
    Set sht = ThisWorkbook.Worksheets(SOP_CONF_SHEET)
    On Error GoTo failed
    If sht Is Nothing Then
        Set sht = ThisWorkbook.Worksheets.Add(After:=ThisWorkbook.Sheets(ThisWorkbook.Sheets.Count))
        sht.Name = SOP_CONF_SHEET
        If Not previous Is Nothing Then previous.Activate
    End If
    r = 1
    Do While CStr(sht.Cells(r, 1).Value) <> ""
        If UCase$(CStr(sht.Cells(r, 1).Value)) = UCase$(key) Then Exit Do
        r = r + 1
    Loop
    sht.Cells(r, 1).Value = key
    sht.Cells(r, 2).NumberFormat = "@"
    sht.Cells(r, 2).Value = value
    SopSetConfig = True
    Exit Function
failed:
    MsgBox "Could not write the setting: " & Err.Description, vbExclamation, "S&OP setup"
    SopSetConfig = False
End Function

Public Sub SopSetStatus(ByVal text As String)
    Application.StatusBar = text
End Sub

Public Sub SopResetStatusBar()
    Application.StatusBar = False
    Application.Cursor = xlDefault
    Application.ScreenUpdating = True
    Application.EnableEvents = True
End Sub
